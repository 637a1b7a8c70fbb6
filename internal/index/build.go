package index

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/clipline/clipline/internal/atomicfile"
	"github.com/clipline/clipline/internal/stream"
)

// BuildOptions configure Build.
type BuildOptions struct {
	Split    string // index only the rows of this split ("": all)
	Captions bool   // index caption_embeddings, one row per caption, instead of image_embedding
	Faiss    bool   // also write faiss.index
	Report   string // a report.json to copy into the bundle ("": none)
	// Progress receives a line every few seconds while the stream is read;
	// nil for silence.
	Progress io.Writer
	Args     []string // index's arguments, recorded in the provenance
}

// dropped are the columns meta.arrow leaves out: the model's inputs and the
// vectors, which vectors.panels holds.
var dropped = []string{stream.ColPixels, stream.ColCaptionTokens, stream.ColImageEmbedding, stream.ColCaptionEmbeddings}

// progressEvery is how often Build reports on a long stream.
const progressEvery = 5 * time.Second

// Build indexes the embedded rows of in into the bundle directory dir,
// written whole in a temporary directory beside it and renamed into place:
// a failure leaves no bundle and an existing bundle there is replaced at
// once (a reader sees the old one or the new one). A directory that is not
// a bundle (no manifest.json) and not empty is refused.
//
// Vectors must be finite and non-zero; they are scaled to unit length,
// except those already unit to float32 rounding (embed's), which are kept
// bit for bit so that scores equal rank's on the same stream. An images
// index needs each image_id once. Errors name the input, the row (0-based,
// as in the stream) and its image_id.
func Build(in *stream.Reader, dir string, opt BuildOptions) (Manifest, error) {
	start := time.Now()
	b, err := newBuilder(in, opt)
	if err != nil {
		return Manifest{}, err
	}
	var report []byte
	if opt.Report != "" {
		if report, err = readReport(opt.Report); err != nil {
			return Manifest{}, err
		}
	}
	exists, err := checkTarget(dir)
	if err != nil {
		return Manifest{}, err
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return Manifest{}, fmt.Errorf("index %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp*")
	if err != nil {
		return Manifest{}, fmt.Errorf("index %s: %w", dir, err)
	}
	untrack := atomicfile.Track(tmp)
	defer func() {
		os.RemoveAll(tmp) // after the rename: the old bundle, or nothing
		untrack()
	}()

	m, err := b.write(tmp, report)
	if err != nil {
		return Manifest{}, err
	}
	// MkdirTemp's directory is private; a bundle is a shared artefact.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return Manifest{}, fmt.Errorf("index %s: %w", dir, err)
	}
	if err := replace(tmp, dir, exists); err != nil {
		return Manifest{}, fmt.Errorf("index %s: %w", dir, err)
	}
	if opt.Progress != nil {
		fmt.Fprintf(opt.Progress, "index: %d %s from %d rows of %s, dim %d, in %.1fs: %s\n",
			m.Count, m.Kind, b.in.RowsRead(), in.Name(), m.Dim, time.Since(start).Seconds(), dir)
	}
	return m, nil
}

// readReport reads the --report file, which must be JSON (serve hands it
// out as it is).
func readReport(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("report %s is not JSON", path)
	}
	return data, nil
}

// checkTarget says whether dir exists, refusing what Build must not
// replace: a file, or a directory holding something other than a bundle.
func checkTarget(dir string) (exists bool, err error) {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("index %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return false, fmt.Errorf("index %s exists and is not a directory; refusing to replace it", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestFile)); err == nil {
		return true, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("index %s: %w", dir, err)
	}
	if len(ents) > 0 {
		return false, fmt.Errorf("index %s is a directory that is not an index bundle (no %s); refusing to replace it", dir, ManifestFile)
	}
	return true, nil
}

// builder gathers the vectors and writes meta.arrow while reading the stream.
type builder struct {
	in         *stream.Reader
	opt        BuildOptions
	kind       string
	schema     *arrow.Schema // the input's, with index's provenance step
	metaSchema *arrow.Schema
	cols       []int // images: the input columns meta.arrow keeps
	hasPath    bool
	hasSplit   bool
	model      Model

	tmp    string // the bundle being written
	dim    int
	vw     *vectorWriter    // made once dim is known
	seen   map[string]int64 // images: image_id -> stream row
	splits map[string]int   // rows of each split read (for an empty --split)
	meta   *ipc.FileWriter
}

func newBuilder(in *stream.Reader, opt BuildOptions) (*builder, error) {
	b := &builder{in: in, opt: opt, kind: KindImages, seen: map[string]int64{}, splits: map[string]int{}}
	need := []string{stream.ColImageID, stream.ColImageEmbedding}
	if opt.Captions {
		b.kind = KindCaptions
		need = []string{stream.ColImageID, stream.ColCaptions, stream.ColCaptionEmbeddings}
	}
	if opt.Split != "" {
		need = append(need, stream.ColSplit)
	}
	if err := in.Require(need...); err != nil {
		return nil, err
	}
	schema := in.Schema()
	b.hasPath = stream.HasColumn(schema, stream.ColImagePath)
	b.hasSplit = stream.HasColumn(schema, stream.ColSplit)
	for _, c := range []string{stream.ColImagePath, stream.ColSplit} {
		if stream.HasColumn(schema, c) {
			if err := in.Require(c); err != nil {
				return nil, err
			}
		}
	}
	var ok bool
	if b.model.Hash, ok = in.Meta(stream.MetaModelHash); !ok {
		return nil, in.Errorf("no %s in the schema metadata (embedded by an older embed, or not by embed); re-run embed, so that serve can check its model against the index", stream.MetaModelHash)
	}
	b.model.Source, _ = in.Meta(stream.MetaModel)
	b.schema = stream.WithProvenance(schema, "index", opt.Args)
	md := b.schema.Metadata()
	if b.opt.Captions {
		fields := []arrow.Field{stream.ImageIDField()}
		if b.hasPath {
			fields = append(fields, stream.ImagePathField())
		}
		if b.hasSplit {
			fields = append(fields, stream.SplitField())
		}
		fields = append(fields, arrow.Field{Name: ColCaption, Type: arrow.BinaryTypes.String})
		b.metaSchema = arrow.NewSchema(fields, &md)
	} else {
		var fields []arrow.Field
		for i, f := range schema.Fields() {
			if !slices.Contains(dropped, f.Name) {
				b.cols = append(b.cols, i)
				fields = append(fields, f)
			}
		}
		b.metaSchema = arrow.NewSchema(fields, &md)
	}
	return b, nil
}

// write reads the stream and writes the bundle's files into tmp.
func (b *builder) write(tmp string, report []byte) (Manifest, error) {
	b.tmp = tmp
	defer func() {
		if b.vw != nil {
			b.vw.close() // after a failure; a no-op after success
		}
	}()
	f, err := os.Create(filepath.Join(tmp, MetaFile))
	if err != nil {
		return Manifest{}, fmt.Errorf("index: %w", err)
	}
	defer f.Close()
	if b.meta, err = ipc.NewFileWriter(f, ipc.WithSchema(b.metaSchema)); err != nil {
		return Manifest{}, fmt.Errorf("index: %s: %w", MetaFile, err)
	}
	if err := b.read(); err != nil {
		return Manifest{}, err
	}
	if err := b.meta.Close(); err != nil {
		return Manifest{}, fmt.Errorf("index: %s: %w", MetaFile, err)
	}
	if err := f.Close(); err != nil {
		return Manifest{}, fmt.Errorf("index: %s: %w", MetaFile, err)
	}
	n, width := b.vw.count(), b.vw.width
	if err := b.vw.close(); err != nil {
		return Manifest{}, err
	}
	if report != nil {
		if err := os.WriteFile(filepath.Join(tmp, ReportFile), report, 0o644); err != nil {
			return Manifest{}, fmt.Errorf("index: %w", err)
		}
	}
	prov, _ := stream.Meta(b.schema, stream.MetaProvenance)
	m := Manifest{Format: FormatVersion, Kind: b.kind, Dim: b.dim, Count: n, Metric: MetricCosine, PanelWidth: width,
		Model: b.model, Provenance: json.RawMessage(prov), Created: time.Now().UTC().Truncate(time.Second)}
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Manifest{}, fmt.Errorf("index: manifest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, ManifestFile), append(js, '\n'), 0o644); err != nil {
		return Manifest{}, fmt.Errorf("index: %w", err)
	}
	return m, nil
}

// read takes every batch of the stream.
func (b *builder) read() error {
	last := time.Now()
	for b.in.Next() {
		rec := b.in.Batch()
		keep, err := b.keep(rec)
		if err != nil {
			return err
		}
		if len(keep) > 0 {
			if b.opt.Captions {
				err = b.captions(rec, keep)
			} else {
				err = b.images(rec, keep)
			}
			if err != nil {
				return err
			}
		}
		if b.opt.Progress != nil && time.Since(last) >= progressEvery {
			last = time.Now()
			fmt.Fprintf(b.opt.Progress, "index: %d rows read, %d %s indexed\n", b.in.RowsRead(), b.count(), b.kind)
		}
	}
	if err := b.in.Err(); err != nil {
		return err
	}
	if b.count() > 0 {
		return nil
	}
	if b.opt.Split != "" {
		names := slices.Sorted(maps.Keys(b.splits))
		return b.in.Errorf("no rows with split %q (splits present: %s)", b.opt.Split, strings.Join(names, ", "))
	}
	if b.opt.Captions {
		return b.in.Errorf("no captions to index")
	}
	return b.in.Errorf("no rows")
}

func (b *builder) count() int {
	if b.vw == nil {
		return 0
	}
	return b.vw.count()
}

// keep lists the rows of rec to index: all, or those of the split.
func (b *builder) keep(rec arrow.RecordBatch) ([]int, error) {
	n := int(rec.NumRows())
	if b.opt.Split == "" {
		keep := make([]int, n)
		for i := range keep {
			keep[i] = i
		}
		return keep, nil
	}
	splits, err := stream.Strings(rec, stream.ColSplit)
	if err != nil {
		return nil, b.in.Errorf("batch %d: %w", b.in.BatchIndex(), err)
	}
	var keep []int
	for i, s := range splits {
		b.splits[s]++
		if s == b.opt.Split {
			keep = append(keep, i)
		}
	}
	return keep, nil
}

func (b *builder) setDim(d int, col string) error {
	switch {
	case d <= 0:
		return b.in.Errorf("%s has dimension %d", col, d)
	case b.dim == 0:
		b.dim = d
		var err error
		if b.vw, err = newVectorWriter(b.tmp, d, b.opt.Faiss); err != nil {
			return err
		}
	case d != b.dim:
		return b.in.Errorf("batch %d: %s has dimension %d, earlier batches %d", b.in.BatchIndex(), col, d, b.dim)
	}
	return nil
}

// where names stream row i of the current batch for errors.
func (b *builder) where(i int, ids []string) string {
	return fmt.Sprintf("row %d (image_id %s)", b.in.FirstRow()+int64(i), ids[i])
}

func (b *builder) images(rec arrow.RecordBatch, keep []int) error {
	ids, err := stream.Strings(rec, stream.ColImageID)
	if err != nil {
		return b.in.Errorf("batch %d: %w", b.in.BatchIndex(), err)
	}
	emb, err := stream.ImageEmbeddings(rec)
	if err != nil {
		return b.in.Errorf("batch %d: %w", b.in.BatchIndex(), err)
	}
	if err := b.setDim(emb.Width, stream.ColImageEmbedding); err != nil {
		return err
	}
	for _, i := range keep {
		row := b.in.FirstRow() + int64(i)
		if prev, dup := b.seen[ids[i]]; dup {
			return b.in.Errorf("%s: the same image_id as row %d; an images index holds each image once", b.where(i, ids), prev)
		}
		b.seen[ids[i]] = row
		if err := b.vw.add(emb.Row(i)); err != nil {
			return b.in.Errorf("%s: %s %w", b.where(i, ids), stream.ColImageEmbedding, err)
		}
	}
	out, err := project(rec, b.metaSchema, b.cols, keep)
	if err != nil {
		return b.in.Errorf("batch %d: %w", b.in.BatchIndex(), err)
	}
	defer out.Release()
	if err := b.meta.Write(out); err != nil {
		return fmt.Errorf("index: %s: %w", MetaFile, err)
	}
	return nil
}

func (b *builder) captions(rec arrow.RecordBatch, keep []int) error {
	fail := func(err error) error { return b.in.Errorf("batch %d: %w", b.in.BatchIndex(), err) }
	ids, err := stream.Strings(rec, stream.ColImageID)
	if err != nil {
		return fail(err)
	}
	caps, err := stream.StringLists(rec, stream.ColCaptions)
	if err != nil {
		return fail(err)
	}
	emb, err := stream.CaptionEmbeddings(rec)
	if err != nil {
		return fail(err)
	}
	if err := b.setDim(emb.Width, stream.ColCaptionEmbeddings); err != nil {
		return err
	}
	var paths, splits []string
	if b.hasPath {
		if paths, err = stream.Strings(rec, stream.ColImagePath); err != nil {
			return fail(err)
		}
	}
	if b.hasSplit {
		if splits, err = stream.Strings(rec, stream.ColSplit); err != nil {
			return fail(err)
		}
	}
	var outIDs, outPaths, outSplits, outCaps []string
	for _, i := range keep {
		if n := emb.Count(i); n != len(caps[i]) {
			return b.in.Errorf("%s: %d captions but %d caption embeddings; re-run embed", b.where(i, ids), len(caps[i]), n)
		}
		for j, c := range caps[i] {
			if err := b.vw.add(emb.Item(i, j)); err != nil {
				return b.in.Errorf("%s: caption %d: %s %w", b.where(i, ids), j, stream.ColCaptionEmbeddings, err)
			}
			outIDs = append(outIDs, ids[i])
			if b.hasPath {
				outPaths = append(outPaths, paths[i])
			}
			if b.hasSplit {
				outSplits = append(outSplits, splits[i])
			}
			outCaps = append(outCaps, c)
		}
	}
	if len(outCaps) == 0 {
		return nil
	}
	cols := []arrow.Array{stream.NewStrings(outIDs)}
	if b.hasPath {
		cols = append(cols, stream.NewStrings(outPaths))
	}
	if b.hasSplit {
		cols = append(cols, stream.NewStrings(outSplits))
	}
	cols = append(cols, stream.NewStrings(outCaps))
	out := array.NewRecordBatch(b.metaSchema, cols, int64(len(outCaps)))
	for _, c := range cols {
		c.Release()
	}
	defer out.Release()
	if err := b.meta.Write(out); err != nil {
		return fmt.Errorf("index: %s: %w", MetaFile, err)
	}
	return nil
}

// unitTol is how far from 1 a squared norm may be for a vector to count as
// unit already: float32 rounding of a normalised vector moves it by about
// dim×6e-8, far less.
const unitTol = 1e-5

// appendUnit appends v at unit length to dst, or says why it has no
// direction (a zero, NaN or infinite value).
func appendUnit(dst, v []float32) ([]float32, error) {
	var ss float64
	for k, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return dst, fmt.Errorf("value %d is %v; re-run embed (a NaN means the model or its input is broken)", k, x)
		}
		ss += float64(x) * float64(x)
	}
	if ss == 0 {
		return dst, errors.New("is all zeros, which has no direction to search by")
	}
	at := len(dst)
	dst = append(dst, v...)
	if math.Abs(ss-1) > unitTol {
		inv := 1 / math.Sqrt(ss)
		for k, x := range v {
			dst[at+k] = float32(float64(x) * inv)
		}
	}
	return dst, nil
}

// project is rows keep of rec's columns cols, as a batch of schema.
func project(rec arrow.RecordBatch, schema *arrow.Schema, cols, keep []int) (arrow.RecordBatch, error) {
	// Runs of consecutive rows: a whole batch, or a split's stretches.
	var runs [][2]int
	for _, i := range keep {
		if k := len(runs) - 1; k >= 0 && runs[k][1] == i {
			runs[k][1]++
		} else {
			runs = append(runs, [2]int{i, i + 1})
		}
	}
	out := make([]arrow.Array, len(cols))
	defer func() {
		for _, a := range out {
			if a != nil {
				a.Release()
			}
		}
	}()
	for k, c := range cols {
		col := rec.Column(c)
		if len(runs) == 1 && runs[0] == [2]int{0, int(rec.NumRows())} {
			col.Retain()
			out[k] = col
			continue
		}
		parts := make([]arrow.Array, len(runs))
		for r, run := range runs {
			parts[r] = array.NewSlice(col, int64(run[0]), int64(run[1]))
		}
		a, err := array.Concatenate(parts, memory.DefaultAllocator)
		for _, p := range parts {
			p.Release()
		}
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", schema.Field(k).Name, err)
		}
		out[k] = a
	}
	return array.NewRecordBatch(schema, out, int64(len(keep))), nil
}
