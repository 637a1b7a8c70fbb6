// Reads a clipline Arrow IPC stream with the official JavaScript Arrow
// implementation and prints its contents as JSON, so the Go test
// (internal/stream/js_test.go) can check every value independently of arrow-go.
//
// usage: node read.mjs STREAM [zstd]
// apache-arrow ships no zstd codec: with "zstd" the pure-JS fzstd
// decompressor is registered first, as a user would.
import { readFileSync } from 'node:fs';
import { tableFromIPC, compressionRegistry, CompressionType } from 'apache-arrow';

const [file, codec] = process.argv.slice(2);
if (codec === 'zstd') {
  const { decompress } = await import('fzstd');
  compressionRegistry.set(CompressionType.ZSTD, { decode: (b) => decompress(b) });
}

const table = tableFromIPC(readFileSync(file));

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
  numRows: table.numRows,
  batches: table.batches.length,
  metadata: Object.fromEntries(table.schema.metadata),
  columns,
}));
