// Writes a small clipline-shaped table with the official JavaScript Arrow
// implementation, as an IPC file and as an IPC stream, so the Go test
// (internal/stream/js_test.go) checks that clipline reads what an
// independent writer makes. Two record batches (rows 0-2 and 3-4); the
// values are a formula the test repeats.
//
// usage: node write.mjs FILE.arrow STREAM.arrows
import { writeFileSync } from 'node:fs';
import {
  Binary, Field, FixedSizeList, Float32, List, Schema, Table, Utf8, tableToIPC, vectorFromArray,
} from 'apache-arrow';

const [filePath, streamPath] = process.argv.slice(2);

const item = (t) => new Field('item', t, true);
const types = {
  image_id: new Utf8(),
  split: new Utf8(),
  captions: new List(item(new Utf8())),
  image_embedding: new FixedSizeList(3, item(new Float32())),
  image_bytes: new Binary(),
};

function rows(first, n) {
  const cols = { image_id: [], split: [], captions: [], image_embedding: [], image_bytes: [] };
  for (let i = first; i < first + n; i++) {
    cols.image_id.push(`js${i}`);
    cols.split.push(i % 2 ? 'test' : 'train');
    cols.captions.push(Array.from({ length: i % 3 }, (_, j) => `caption ${j} of ${i} ✓`));
    cols.image_embedding.push([i, i / 4, -i]);
    cols.image_bytes.push(Uint8Array.from({ length: 5 * i }, (_, k) => (31 * i + k) & 255));
  }
  const vecs = {};
  for (const [name, values] of Object.entries(cols)) vecs[name] = vectorFromArray(values, types[name]);
  return new Table(vecs);
}

const data = rows(0, 3).concat(rows(3, 2));
const schema = new Schema(data.schema.fields,
  new Map([['clipline.embedding_dim', '3'], ['written_by', 'apache-arrow js']]));
const table = new Table(schema, data.batches);
writeFileSync(filePath, tableToIPC(table, 'file'));
writeFileSync(streamPath, tableToIPC(table, 'stream'));
