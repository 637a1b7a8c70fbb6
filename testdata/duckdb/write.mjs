// Writes a parquet file with DuckDB, independently of arrow-go, shaped as
// Hugging Face datasets write image-caption data: an Image struct
// {bytes, path}, a list of captions, an integer id and a split column.
//   node write.mjs OUT.parquet DIR
// reads DIR/*.png and DIR/*.jpg, sorted by file name, as the images; image i
// (0-based) gets id 100+i, captions ["caption i a", "caption i b"] and split
// test for i = 1, else train.
import { DuckDBInstance } from '@duckdb/node-api';

const [out, dir] = process.argv.slice(2);
if (!out || !dir) {
  console.error('usage: node write.mjs OUT.parquet DIR');
  process.exit(2);
}
const q = (s) => "'" + s.replaceAll("'", "''") + "'";
const inst = await DuckDBInstance.create(':memory:');
const c = await inst.connect();
await c.run(`
  COPY (
    SELECT {'bytes': content, 'path': parse_filename(filename)} AS image,
           [format('caption {} a', i), format('caption {} b', i)] AS caption,
           100 + i AS img_id,
           CASE WHEN i = 1 THEN 'test' ELSE 'train' END AS split
    FROM (SELECT *, (row_number() OVER (ORDER BY filename) - 1)::BIGINT AS i
          FROM read_blob([${q(dir + '/*.png')}, ${q(dir + '/*.jpg')}]))
    ORDER BY i
  ) TO ${q(out)} (FORMAT parquet)`);
