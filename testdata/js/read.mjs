// Reads a clipline Arrow IPC stream or file with the official JavaScript
// Arrow implementation and prints its contents as JSON, so the Go test
// (internal/stream/js_test.go) can check every value independently of arrow-go.
// A file is read through its footer, batch by batch at random (last first),
// so the footer's offsets are checked too; "format" says which it was.
//
// usage: node read.mjs STREAM|FILE [zstd]
// apache-arrow ships no zstd codec: with "zstd" the pure-JS fzstd
// decompressor is registered first, as a user would.
import { readFileSync } from 'node:fs';
import { tableFromIPC, compressionRegistry, CompressionType, RecordBatchReader, Table } from 'apache-arrow';

const [file, codec] = process.argv.slice(2);
if (codec === 'zstd') {
  const { decompress } = await import('fzstd');
  compressionRegistry.set(CompressionType.ZSTD, { decode: (b) => decompress(b) });
}

const bytes = readFileSync(file);
let table;
let format = 'stream';
const reader = RecordBatchReader.from(bytes);
if (reader.isFile()) {
  format = 'file';
  reader.open();
  const batches = [];
  for (let i = reader.numRecordBatches - 1; i >= 0; i--) batches[i] = reader.readRecordBatch(i);
  table = new Table(reader.schema, batches);
} else {
  table = tableFromIPC(bytes);
}

// toPlain turns Arrow values (vectors, typed arrays, bigints) into JSON.
function toPlain(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  if (ArrayBuffer.isView(v)) return Array.from(v, toPlain);
  if (typeof v.toArray === 'function') return Array.from(v.toArray(), toPlain);
  if (typeof v[Symbol.iterator] === 'function') return Array.from(v, toPlain);
  return v;
}

const columns = {};
for (const field of table.schema.fields) {
  const col = table.getChild(field.name);
  const rows = [];
  for (let i = 0; i < col.length; i++) rows.push(toPlain(col.get(i)));
  columns[field.name] = { type: String(field.type), rows };
}
process.stdout.write(JSON.stringify({
  format,
  numRows: table.numRows,
  batches: table.batches.length,
  metadata: Object.fromEntries(table.schema.metadata),
  columns,
}));
