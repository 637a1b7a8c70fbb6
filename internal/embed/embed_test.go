package embed

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/decode"
	"github.com/clipline/clipline/internal/embed/embedtest"
	"github.com/clipline/clipline/internal/imageproc"
	"github.com/clipline/clipline/internal/model"
	"github.com/clipline/clipline/internal/modelid"
	"github.com/clipline/clipline/internal/stream"
	"github.com/clipline/clipline/internal/stream/streamtest"
)

// load opens the golden tiny model with opts.
func load(t *testing.T, opts Options) *Embedder {
	t.Helper()
	e, err := Load(embedtest.GoldenModel(t), cpu.New(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// goldenStream lays the reference's 4 images and 4 token rows out over 5
// rows with uneven caption counts (2, 0, 1, 1 and a row without an image's
// worth of captions), one row per record batch, so every batch of the model
// straddles rows and record batches.
func goldenStream(ref embedtest.Reference) (embedtest.Stream, []int) {
	px := ref.Side * ref.Side * 3
	tok := func(i int) []int32 { return ref.IDs[i*ref.Context : (i+1)*ref.Context] }
	img := func(i int) []uint8 { return ref.Pixels[i*px : (i+1)*px] }
	s := embedtest.Stream{Side: ref.Side, Context: ref.Context, BatchRows: 1}
	s.Rows = []embedtest.Row{
		{ID: "a", Note: "n0", Pixels: img(0), Captions: []string{"t0", "t1"}, Tokens: [][]int32{tok(0), tok(1)}},
		{ID: "b", Note: "n1", Pixels: img(1)},
		{ID: "c", Note: "n2", Pixels: img(2), Captions: []string{"t2"}, Tokens: [][]int32{tok(2)}},
		{ID: "d", Note: "n3", Pixels: img(3), Captions: []string{"t3"}, Tokens: [][]int32{tok(3)}},
		{ID: "e", Note: "n4", Pixels: img(0)},
	}
	// Reference image of each row.
	return s, []int{0, 1, 2, 3, 0}
}

func runFile(t *testing.T, e *Embedder, in string, o RunOptions) (Stats, error) {
	t.Helper()
	r, err := stream.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return e.Run(r, o)
}

// TestGoldenStream: embeddings of the reference pixels and ids match PyTorch's
// projections normalised (1e-4) and this model's own forward at one batch
// (1e-5), for batch sizes below, between and above the row counts; other
// columns, row order and metadata survive.
func TestGoldenStream(t *testing.T) {
	ref := embedtest.LoadReference(t)
	s, imgOf := goldenStream(ref)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.arrow")
	s.Write(t, in)

	// This model's own raw forward over the 4 reference inputs in one batch.
	m, err := model.Load(embedtest.GoldenModel(t), cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	pre, err := imageproc.ForModel(embedtest.GoldenModel(t), ref.Side)
	if err != nil {
		t.Fatal(err)
	}
	px := ref.Side * ref.Side * 3
	norm := make([]float32, ref.N*px)
	for i := range ref.N {
		pre.Normalize(norm[i*px:(i+1)*px], ref.Pixels[i*px:(i+1)*px])
	}
	buf, err := m.VisionForward(m.NewVisionPlan(ref.N, false), norm, ref.N)
	if err != nil {
		t.Fatal(err)
	}
	ownImg := make([]float32, ref.N*ref.Dim)
	m.Backend().Download(ownImg, buf)
	buf, err = m.TextForward(m.NewTextPlan(ref.N, false), ref.IDs, ref.N)
	if err != nil {
		t.Fatal(err)
	}
	ownTxt := make([]float32, ref.N*ref.Dim)
	m.Backend().Download(ownTxt, buf)

	wantImg := func(src []float32) []float32 {
		n := embedtest.Normalized(src, ref.Dim, 0)
		var out []float32
		for _, i := range imgOf {
			out = append(out, n[i*ref.Dim:(i+1)*ref.Dim]...)
		}
		return out
	}
	modelHash, err := modelid.Hash(embedtest.GoldenModel(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, B := range []int{1, 3, 4, 64} {
		t.Run(fmt.Sprintf("batch=%d", B), func(t *testing.T) {
			e := load(t, Options{BatchSize: B})
			out := filepath.Join(dir, fmt.Sprintf("out%d.arrow", B))
			var log bytes.Buffer
			st, err := runFile(t, e, in, RunOptions{Out: out, Args: []string{"--model", "m"}, Model: "m", Progress: &log, ProgressEvery: time.Nanosecond})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(log.String(), "embed: 5 images (") || !strings.Contains(log.String(), ", 4 captions (") {
				t.Errorf("progress lines:\n%s", log.String())
			}
			if st.Rows != 5 || st.Images != 5 || st.Captions != 4 {
				t.Errorf("stats %+v, want 5 rows, 5 images, 4 captions", st)
			}
			o := embedtest.Read(t, out)
			if d := embedtest.MaxAbsDiff(t, o.Images.Values, wantImg(ref.ImageEmbeds)); !(d <= 1e-4) {
				t.Errorf("image embeddings differ from PyTorch's by %g", d)
			}
			if d := embedtest.MaxAbsDiff(t, o.Images.Values, wantImg(ownImg)); !(d <= 1e-5) {
				t.Errorf("image embeddings differ from the model's forward by %g", d)
			}
			if d := embedtest.MaxAbsDiff(t, o.Caps.Values, embedtest.Normalized(ref.TextEmbeds, ref.Dim, 0)); !(d <= 1e-4) {
				t.Errorf("caption embeddings differ from PyTorch's by %g", d)
			}
			if d := embedtest.MaxAbsDiff(t, o.Caps.Values, embedtest.Normalized(ownTxt, ref.Dim, 0)); !(d <= 1e-5) {
				t.Errorf("caption embeddings differ from the model's forward by %g", d)
			}
			if want := []int32{0, 2, 2, 3, 4, 4}; !slices.Equal(o.Caps.Offsets, want) {
				t.Errorf("caption_embeddings offsets %v, want %v (aligned with captions)", o.Caps.Offsets, want)
			}
			if !slices.Equal(o.IDs, []string{"a", "b", "c", "d", "e"}) || !slices.Equal(o.Notes, []string{"n0", "n1", "n2", "n3", "n4"}) {
				t.Errorf("pass-through columns: ids %v notes %v", o.IDs, o.Notes)
			}
			if o.Images.Width != ref.Dim || o.Caps.Width != ref.Dim {
				t.Errorf("widths %d, %d, want %d", o.Images.Width, o.Caps.Width, ref.Dim)
			}
			var names []string
			for _, f := range o.Schema.Fields() {
				names = append(names, f.Name)
			}
			if want := []string{"image_id", "note", "captions", "pixels", "caption_tokens", "image_embedding", "caption_embeddings"}; !slices.Equal(names, want) {
				t.Errorf("columns %v, want %v", names, want)
			}
			if v, _ := stream.Meta(o.Schema, stream.MetaEmbeddingDim); v != "32" {
				t.Errorf("embedding_dim %q", v)
			}
			if v, _ := stream.Meta(o.Schema, stream.MetaModel); v != "m" {
				t.Errorf("model %q", v)
			}
			if v, _ := stream.Meta(o.Schema, stream.MetaModelHash); v != modelHash {
				t.Errorf("model_hash %q, want %q", v, modelHash)
			}
			if v, _ := stream.Meta(o.Schema, stream.MetaImageSize); v != "32" {
				t.Errorf("image_size %q not passed through", v)
			}
			prov, err := stream.Provenance(o.Schema)
			if err != nil || len(prov) != 2 || prov[0].Stage != "test" || prov[1].Stage != "embed" || !slices.Equal(prov[1].Args, []string{"--model", "m"}) {
				t.Errorf("provenance %+v (%v)", prov, err)
			}
		})
	}
}

// TestDimAndNoNormalize: --dim keeps the first N dimensions renormalised;
// --no-normalize keeps the raw projections (cut too with --dim).
func TestDimAndNoNormalize(t *testing.T) {
	ref := embedtest.LoadReference(t)
	s, imgOf := goldenStream(ref)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.arrow")
	s.Write(t, in)
	pick := func(x []float32, w int) []float32 {
		var out []float32
		for _, i := range imgOf {
			out = append(out, x[i*w:(i+1)*w]...)
		}
		return out
	}
	cut := func(x []float32, n int) []float32 {
		var out []float32
		for i := 0; i < len(x); i += ref.Dim {
			out = append(out, x[i:i+n]...)
		}
		return out
	}
	cases := []struct {
		opts             Options
		wantImg, wantTxt []float32
	}{
		{Options{Dim: 8}, pick(embedtest.Normalized(ref.ImageEmbeds, ref.Dim, 8), 8), embedtest.Normalized(ref.TextEmbeds, ref.Dim, 8)},
		{Options{NoNormalize: true}, pick(ref.ImageEmbeds, ref.Dim), ref.TextEmbeds},
		{Options{NoNormalize: true, Dim: 5}, pick(cut(ref.ImageEmbeds, 5), 5), cut(ref.TextEmbeds, 5)},
	}
	for k, c := range cases {
		e := load(t, c.opts)
		out := filepath.Join(dir, fmt.Sprintf("out%d.arrow", k))
		if _, err := runFile(t, e, in, RunOptions{Out: out}); err != nil {
			t.Fatal(err)
		}
		o := embedtest.Read(t, out)
		if d := embedtest.MaxAbsDiff(t, o.Images.Values, c.wantImg); !(d <= 1e-4) {
			t.Errorf("%+v: image embeddings off by %g", c.opts, d)
		}
		if d := embedtest.MaxAbsDiff(t, o.Caps.Values, c.wantTxt); !(d <= 1e-4) {
			t.Errorf("%+v: caption embeddings off by %g", c.opts, d)
		}
		w := e.Dim()
		if o.Images.Width != w || o.Caps.Width != w {
			t.Errorf("%+v: widths %d, %d, want %d", c.opts, o.Images.Width, o.Caps.Width, w)
		}
		if v, _ := stream.Meta(o.Schema, stream.MetaEmbeddingDim); v != fmt.Sprint(w) {
			t.Errorf("%+v: embedding_dim %q", c.opts, v)
		}
		if !c.opts.NoNormalize {
			for i := 0; i < len(o.Images.Values); i += w {
				var ss float64
				for _, x := range o.Images.Values[i : i+w] {
					ss += float64(x) * float64(x)
				}
				if !(math.Abs(ss-1) <= 1e-5) {
					t.Errorf("%+v: norm² %g", c.opts, ss)
				}
			}
		}
	}
	for _, d := range []int{-1, 33} {
		if _, err := Load(embedtest.GoldenModel(t), cpu.New(), Options{Dim: d}); err == nil || !strings.Contains(err.Error(), "32 dimensions") {
			t.Errorf("dim %d: error %v", d, err)
		}
	}
}

// randomStream makes rows with random images and 0-3 random token rows each
// (start 510, ids below, end 511 last, zero padding): enough items to fill
// several batches of the sizes tested.
func randomStream(rows, side, ctx, batchRows int, seed uint64) embedtest.Stream {
	rng := rand.New(rand.NewPCG(seed, 7))
	s := embedtest.Stream{Side: side, Context: ctx, BatchRows: batchRows}
	for i := range rows {
		r := embedtest.Row{ID: fmt.Sprint("img", i), Note: fmt.Sprint("note", i), Pixels: make([]uint8, side*side*3)}
		for k := range r.Pixels {
			r.Pixels[k] = uint8(rng.IntN(256))
		}
		for c := range rng.IntN(4) {
			ids := make([]int32, ctx)
			n := 1 + rng.IntN(ctx-2)
			ids[0] = 510
			for k := 1; k <= n; k++ {
				ids[k] = int32(1 + rng.IntN(509))
			}
			ids[min(n+1, ctx-1)] = 511
			r.Tokens = append(r.Tokens, ids)
			r.Captions = append(r.Captions, fmt.Sprint("caption ", i, " ", c))
		}
		s.Rows = append(s.Rows, r)
	}
	return s
}

// TestBatchingAcrossRows: the stream's embeddings equal those of embedding
// each image and caption alone, whatever the batch size relative to the rows
// and record batches (1, smaller, equal to and larger than a record batch,
// larger than the whole stream).
func TestBatchingAcrossRows(t *testing.T) {
	side := 32
	s := randomStream(23, side, 77, 5, 1)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.arrow")
	s.Write(t, in)

	one := load(t, Options{BatchSize: 1})
	var wantImg, wantTxt []float32
	var offs []int32 = []int32{0}
	for _, r := range s.Rows {
		v := make([]float32, one.Dim())
		if err := one.Images(v, r.Pixels, 1); err != nil {
			t.Fatal(err)
		}
		wantImg = append(wantImg, v...)
		for _, ids := range r.Tokens {
			if err := one.Texts(v, ids, len(ids), 1); err != nil {
				t.Fatal(err)
			}
			wantTxt = append(wantTxt, v...)
		}
		offs = append(offs, offs[len(offs)-1]+int32(len(r.Tokens)))
	}
	for _, B := range []int{1, 3, 5, 7, 64} {
		e := load(t, Options{BatchSize: B})
		out := filepath.Join(dir, fmt.Sprintf("out%d.arrow", B))
		st, err := runFile(t, e, in, RunOptions{Out: out})
		if err != nil {
			t.Fatal(err)
		}
		o := embedtest.Read(t, out)
		if st.Rows != 23 || len(o.IDs) != 23 {
			t.Fatalf("batch %d: %d rows (stats %+v)", B, len(o.IDs), st)
		}
		if d := embedtest.MaxAbsDiff(t, o.Images.Values, wantImg); !(d <= 1e-5) {
			t.Errorf("batch %d: image embeddings differ by %g", B, d)
		}
		if d := embedtest.MaxAbsDiff(t, o.Caps.Values, wantTxt); !(d <= 1e-5) {
			t.Errorf("batch %d: caption embeddings differ by %g", B, d)
		}
		if !slices.Equal(o.Caps.Offsets, offs) {
			t.Errorf("batch %d: offsets %v, want %v", B, o.Caps.Offsets, offs)
		}
		for i, id := range o.IDs {
			if id != s.Rows[i].ID || o.Notes[i] != s.Rows[i].Note {
				t.Fatalf("batch %d: row %d is %s/%s", B, i, id, o.Notes[i])
			}
		}
	}
}

// TestOneKind: a stream with only pixels gets only image_embedding, one with
// only tokens only caption_embeddings; a shorter context than the model's is
// accepted and gives the same embeddings.
func TestOneKind(t *testing.T) {
	ref := embedtest.LoadReference(t)
	full, _ := goldenStream(ref)
	dir := t.TempDir()
	e := load(t, Options{BatchSize: 2})

	pixOnly := full
	pixOnly.Context = 0
	in := filepath.Join(dir, "pix.arrow")
	pixOnly.Write(t, in)
	out := filepath.Join(dir, "pix.out.arrow")
	if _, err := runFile(t, e, in, RunOptions{Out: out}); err != nil {
		t.Fatal(err)
	}
	o := embedtest.Read(t, out)
	if o.Images.Width != ref.Dim || stream.HasColumn(o.Schema, stream.ColCaptionEmbeddings) {
		t.Errorf("pixels only: columns %v", o.Schema)
	}

	// Tokens only, cut to the shortest context that holds every reference
	// row's end token (the rest is padding).
	C := 0
	for i := range ref.N {
		row := ref.IDs[i*ref.Context : (i+1)*ref.Context]
		C = max(C, slices.Index(row, slices.Max(row))+1)
	}
	if C == ref.Context {
		t.Fatalf("reference rows fill the context; cannot test a shorter one")
	}
	tokOnly := full
	tokOnly.Side = 0
	tokOnly.Context = C
	tokOnly.Rows = slices.Clone(full.Rows)
	for i, r := range tokOnly.Rows {
		var short [][]int32
		for _, ids := range r.Tokens {
			short = append(short, ids[:C])
		}
		tokOnly.Rows[i].Tokens = short
	}
	in = filepath.Join(dir, "tok.arrow")
	tokOnly.Write(t, in)
	out = filepath.Join(dir, "tok.out.arrow")
	if _, err := runFile(t, e, in, RunOptions{Out: out}); err != nil {
		t.Fatal(err)
	}
	o = embedtest.Read(t, out)
	if o.Caps.Width != ref.Dim || stream.HasColumn(o.Schema, stream.ColImageEmbedding) {
		t.Errorf("tokens only: columns %v", o.Schema)
	}
	if d := embedtest.MaxAbsDiff(t, o.Caps.Values, embedtest.Normalized(ref.TextEmbeds, ref.Dim, 0)); !(d <= 1e-4) {
		t.Errorf("context %d: caption embeddings differ by %g", C, d)
	}
}

// TestErrors: clear messages for streams that do not fit the model, and no
// output file after a failure.
func TestErrors(t *testing.T) {
	e := load(t, Options{})
	dir := t.TempDir()
	good := randomStream(3, 32, 77, 0, 2)
	cases := []struct {
		name string
		s    embedtest.Stream
		want string
	}{
		{"size", randomStream(2, 64, 77, 0, 3), "in.arrow: pixels are 64x64 but the model expects 32x32; decode with --model DIR"},
		{"meta size", func() embedtest.Stream {
			s := good
			s.Meta = map[string]string{stream.MetaImageSize: "224"}
			return s
		}(), "clipline.image_size says 224 but the pixels column holds 32x32 images"},
		{"context", randomStream(2, 32, 78, 0, 4), "caption_tokens have context length 78 but the model's is 77 (max_position_embeddings); tokenize with --context 77"},
		{"none", embedtest.Stream{Rows: []embedtest.Row{{ID: "x", Captions: []string{"a"}}}}, "in.arrow: nothing to embed: no pixels, image_bytes or image_path (images) and no caption_tokens (captions; run tokenize first)"},
		{"vocab", func() embedtest.Stream {
			s := randomStream(6, 32, 77, 2, 5)
			s.Rows[4].Tokens = [][]int32{make([]int32, 77), make([]int32, 77)}
			s.Rows[4].Captions = []string{"a", "b"}
			s.Rows[4].Tokens[1][3] = 600
			return s
		}(), "in.arrow: row 4 (image_id img4): caption 1: token id 600 is outside the model's vocabulary [0, 512)"},
	}
	for _, c := range cases {
		in := filepath.Join(dir, "in.arrow")
		c.s.Write(t, in)
		out := filepath.Join(dir, "out.arrow")
		_, err := runFile(t, e, in, RunOptions{Out: out})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%s: output exists after failure", c.name)
		}
	}

	// A truncated stream fails after some rows, without output.
	in := filepath.Join(dir, "in.arrows")
	randomStream(20, 32, 77, 4, 6).Write(t, in)
	data, _ := os.ReadFile(in)
	os.WriteFile(in, data[:len(data)*2/3], 0o644)
	out := filepath.Join(dir, "out.arrow")
	if _, err := runFile(t, e, in, RunOptions{Out: out}); err == nil {
		t.Error("truncated input: no error")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("truncated input: output exists")
	}
}

// TestEmptyAndCompressed: a stream without rows gives a valid empty stream
// with the new columns; zstd output reads back the same.
func TestEmptyAndCompressed(t *testing.T) {
	e := load(t, Options{BatchSize: 4})
	dir := t.TempDir()
	in := filepath.Join(dir, "empty.arrow")
	embedtest.Stream{Side: 32, Context: 77}.Write(t, in)
	out := filepath.Join(dir, "empty.out.arrow")
	if _, err := runFile(t, e, in, RunOptions{Out: out}); err != nil {
		t.Fatal(err)
	}
	o := embedtest.Read(t, out)
	if len(o.IDs) != 0 || !stream.HasColumn(o.Schema, stream.ColImageEmbedding) || !stream.HasColumn(o.Schema, stream.ColCaptionEmbeddings) {
		t.Errorf("empty: %d rows, schema %v", len(o.IDs), o.Schema)
	}

	in = filepath.Join(dir, "in.arrow")
	randomStream(9, 32, 77, 4, 8).Write(t, in)
	plain, zst := filepath.Join(dir, "plain.arrow"), filepath.Join(dir, "zstd.arrow")
	if _, err := runFile(t, e, in, RunOptions{Out: plain}); err != nil {
		t.Fatal(err)
	}
	if _, err := runFile(t, e, in, RunOptions{Out: zst, Compress: "zstd"}); err != nil {
		t.Fatal(err)
	}
	a, b := embedtest.Read(t, plain), embedtest.Read(t, zst)
	if !slices.Equal(a.Images.Values, b.Images.Values) || !slices.Equal(a.Caps.Values, b.Caps.Values) {
		t.Error("zstd output differs")
	}
}

// TestSplit: with Split only that split's rows are embedded and written,
// with the embeddings they get in a full run; a stream without a split
// column is an error.
func TestSplit(t *testing.T) {
	s := randomStream(23, 32, 77, 5, 9)
	names := []string{"train", "test", "test", "val", "train", "test", "test", "test"}
	for i := range s.Rows {
		s.Rows[i].Split = names[i%len(names)]
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "in.arrow")
	s.Write(t, in)
	e := load(t, Options{BatchSize: 4})
	all, part := filepath.Join(dir, "all.arrow"), filepath.Join(dir, "test.arrow")
	if _, err := runFile(t, e, in, RunOptions{Out: all}); err != nil {
		t.Fatal(err)
	}
	st, err := runFile(t, e, in, RunOptions{Out: part, Split: "test"})
	if err != nil {
		t.Fatal(err)
	}
	a, p := embedtest.Read(t, all), embedtest.Read(t, part)
	var wantIDs []string
	var wantImg, wantCaps []float32
	D := a.Images.Width
	for i, sp := range a.Splits {
		if sp != "test" {
			continue
		}
		wantIDs = append(wantIDs, a.IDs[i])
		wantImg = append(wantImg, a.Images.Values[i*D:(i+1)*D]...)
		wantCaps = append(wantCaps, a.Caps.Values[int(a.Caps.Offsets[i])*D:int(a.Caps.Offsets[i+1])*D]...)
	}
	if !slices.Equal(p.IDs, wantIDs) || st.Rows != int64(len(wantIDs)) || st.Dropped != int64(23-len(wantIDs)) {
		t.Errorf("rows %v, want %v (stats %+v)", p.IDs, wantIDs, st)
	}
	if d := embedtest.MaxAbsDiff(t, p.Images.Values, wantImg); !(d <= 1e-5) {
		t.Errorf("image embeddings differ from the full run's by %g", d)
	}
	if d := embedtest.MaxAbsDiff(t, p.Caps.Values, wantCaps); !(d <= 1e-5) {
		t.Errorf("caption embeddings differ from the full run's by %g", d)
	}

	randomStream(3, 32, 77, 0, 2).Write(t, in)
	if _, err := runFile(t, e, in, RunOptions{Out: part, Split: "test"}); err == nil || !strings.Contains(err.Error(), "--split test") {
		t.Errorf("no split column: %v", err)
	}
}

// TestDecodesImages: without pixels, embed decodes image_bytes (which wins
// over image_path) or image_path itself, and its image embeddings equal,
// bit for bit, those of the same rows decoded by the decode stage first
// (so its pixels are decode's); a corrupt image names its row.
func TestDecodesImages(t *testing.T) {
	dir := t.TempDir()
	e := load(t, Options{BatchSize: 3})
	s := randomStream(7, 0, 77, 2, 9)
	var blobs [][]byte
	for i := range s.Rows {
		m := image.NewNRGBA(image.Rect(0, 0, 30+i*9, 50-i*3))
		for k := range m.Pix {
			m.Pix[k] = uint8(k*7 + i*31)
			if k%4 == 3 {
				m.Pix[k] = 255
			}
		}
		var buf bytes.Buffer
		enc := png.Encode
		if i%2 == 1 {
			enc = func(w io.Writer, m image.Image) error { return jpeg.Encode(w, m, nil) }
		}
		if err := enc(&buf, m); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("img%d.bin", i)
		if err := os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		s.Rows[i].Path = name // relative: resolved against ImageRoot
		blobs = append(blobs, buf.Bytes())
	}
	byPath := filepath.Join(dir, "paths.arrows")
	s.Write(t, byPath)

	// The reference: decode's pixels, then embed.
	decoded := filepath.Join(dir, "decoded.arrows")
	r, err := stream.Open(byPath)
	if err != nil {
		t.Fatal(err)
	}
	err = decode.Run(r, decode.Options{Geometry: e.Preprocess().Geometry, ImageRoot: dir, Out: decoded})
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	embedOut := func(in string, o RunOptions) embedtest.Output {
		t.Helper()
		o.Out = filepath.Join(dir, "out.arrows")
		if _, err := runFile(t, e, in, o); err != nil {
			t.Fatal(err)
		}
		return embedtest.Read(t, o.Out)
	}
	want := embedOut(decoded, RunOptions{})
	if want.Images.Rows() != 7 || slices.Max(want.Images.Values) == 0 {
		t.Fatalf("reference: %d image embeddings", want.Images.Rows())
	}
	same := func(name string, got embedtest.Output) {
		t.Helper()
		if !slices.EqualFunc(got.Images.Values, want.Images.Values, func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }) {
			t.Errorf("%s: image embeddings differ from those of decode's pixels", name)
		}
		if !slices.Equal(got.Caps.Values, want.Caps.Values) || !slices.Equal(got.IDs, want.IDs) || !slices.Equal(got.Notes, want.Notes) {
			t.Errorf("%s: captions or passed-through columns differ", name)
		}
		if stream.HasColumn(got.Schema, stream.ColPixels) {
			t.Errorf("%s: embed wrote a pixels column", name)
		}
	}
	same("image_path", embedOut(byPath, RunOptions{ImageRoot: dir}))

	// image_bytes, with paths that name other (and missing) files.
	for i := range s.Rows {
		s.Rows[i].Bytes = blobs[i]
		s.Rows[i].Path = fmt.Sprintf("img%d.bin", (i+1)%8)
	}
	byBytes := filepath.Join(dir, "bytes.arrows")
	s.Write(t, byBytes)
	got := embedOut(byBytes, RunOptions{ImageRoot: dir})
	same("image_bytes", got)
	if !stream.HasColumn(got.Schema, stream.ColImageBytes) {
		t.Error("image_bytes not passed through")
	}
	// And the pixels themselves: embed's decoding of either column is the
	// decode stage's pixels column, byte for byte.
	var wantPix []byte
	for _, b := range streamtest.Batches(t, decoded) {
		p, err := stream.Pixels(b)
		if err != nil {
			t.Fatal(err)
		}
		wantPix = append(wantPix, p.Values...)
	}
	for _, in := range []string{byPath, byBytes} {
		if got := embedPixels(t, e, in, dir); !bytes.Equal(got, wantPix) {
			t.Errorf("%s: embed's pixels differ from decode's", filepath.Base(in))
		}
	}

	s.Rows[3].Bytes = blobs[3][:len(blobs[3])/2]
	s.Write(t, byBytes)
	out := filepath.Join(dir, "bad.arrows")
	if _, err := runFile(t, e, byBytes, RunOptions{Out: out}); err == nil || !strings.HasPrefix(err.Error(), byBytes+": row 3 (image_id img3): image_bytes: ") {
		t.Errorf("corrupt image: %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("output exists after a corrupt image")
	}
}

// embedPixels is the pixels Run decodes for the stream at path, in order.
func embedPixels(t *testing.T, e *Embedder, path, root string) []byte {
	t.Helper()
	r, err := stream.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ins, err := e.Check(r)
	if err != nil || !ins.Decode {
		t.Fatalf("Check: %+v, %v", ins, err)
	}
	src, err := e.imageSource(r, root)
	if err != nil {
		t.Fatal(err)
	}
	run := &runner{e: e, in: r, ins: ins, images: src}
	var out []byte
	for r.Next() {
		p, err := run.decode(r.Batch(), r.FirstRow())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Values...)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
