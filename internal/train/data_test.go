package train

import (
	"bytes"
	"math"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/clipline/clipline/internal/metrics"
	"github.com/clipline/clipline/internal/stream"
	"github.com/clipline/clipline/internal/stream/streamtest"
)

type testRow struct {
	id, split, path string
	caps            []string
	toks            [][]int32
	pix             []byte
}

// writeStream builds an in-memory clipline stream from rows, with or
// without the pixels column.
func writeStream(t *testing.T, rows []testRow, ctx, side int, withPixels, withSplit bool) *stream.Reader {
	t.Helper()
	fields := []arrow.Field{stream.ImageIDField(), stream.ImagePathField(), stream.CaptionsField(), stream.CaptionTokensField(ctx)}
	var ids, paths, splits []string
	var caps [][]string
	toks := stream.Tokens{Width: ctx, Offsets: []int32{0}}
	pix := stream.PixelRows{Width: side * side * 3}
	for _, r := range rows {
		ids, paths, splits = append(ids, r.id), append(paths, r.path), append(splits, r.split)
		caps = append(caps, r.caps)
		for _, tk := range r.toks {
			toks.Values = append(toks.Values, tk...)
		}
		toks.Offsets = append(toks.Offsets, toks.Offsets[len(toks.Offsets)-1]+int32(len(r.toks)))
		pix.Values = append(pix.Values, r.pix...)
	}
	cols := []arrow.Array{stream.NewStrings(ids), stream.NewStrings(paths), stream.NewStringLists(caps), stream.NewCaptionTokens(toks)}
	if withSplit {
		fields = append(fields, stream.SplitField())
		cols = append(cols, stream.NewStrings(splits))
	}
	if withPixels {
		fields = append(fields, stream.PixelsField(side))
		cols = append(cols, stream.NewPixels(pix))
	}
	schema := arrow.NewSchema(fields, nil)
	rec := array.NewRecordBatch(schema, cols, int64(len(rows)))
	defer rec.Release()
	data := streamtest.Encode(t, schema, stream.Options{BatchRows: 2}, rec)
	r, err := stream.NewReader(bytes.NewReader(data), "test.arrow")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func tok(ctx int, ids ...int32) []int32 {
	out := make([]int32, ctx)
	copy(out, ids)
	return out
}

func TestReadSplitsWithPixels(t *testing.T) {
	side, ctx := 4, 8
	px := func(v byte) []byte { return bytes.Repeat([]byte{v}, side*side*3) }
	rows := []testRow{
		{"a", "train", "", []string{"a one", "a two"}, [][]int32{tok(ctx, 1, 5, 9), tok(ctx, 1, 6, 9)}, px(10)},
		{"b", "val", "", []string{"b one"}, [][]int32{tok(ctx, 1, 7, 9)}, px(20)},
		{"c", "train", "", []string{"c one"}, [][]int32{tok(ctx, 1, 8, 9)}, px(30)},
		{"d", "test", "", []string{"d one"}, [][]int32{tok(ctx, 1, 8, 9)}, px(40)},
		{"e", "train", "", nil, nil, px(50)},
	}
	r := writeStream(t, rows, ctx, side, true, true)
	got, err := ReadSplits(r, []string{"train", "val"}, ReadOptions{Side: side, MaxContext: 77, VocabSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	tr, va := got["train"], got["val"]
	if !reflect.DeepEqual(tr.ImageIDs, []string{"a", "c", "e"}) || !reflect.DeepEqual(va.ImageIDs, []string{"b"}) {
		t.Fatalf("images: train %v val %v", tr.ImageIDs, va.ImageIDs)
	}
	if tr.Pairs() != 3 || !reflect.DeepEqual(tr.PairImage, []int32{0, 0, 1}) ||
		!reflect.DeepEqual(tr.Captions, []string{"a one", "a two", "c one"}) {
		t.Errorf("train pairs %v %v", tr.PairImage, tr.Captions)
	}
	if !reflect.DeepEqual(tr.PairTokens(1), tok(ctx, 1, 6, 9)) || tr.Context != ctx {
		t.Errorf("tokens %v ctx %d", tr.PairTokens(1), tr.Context)
	}
	if tr.Image(1)[0] != 30 || tr.Image(2)[5] != 50 || va.Image(0)[0] != 20 {
		t.Error("pixels misplaced")
	}

	// Wrong image size, vocabulary and context are errors naming the input.
	for _, tc := range []struct {
		o    ReadOptions
		want string
	}{
		{ReadOptions{Side: 8, MaxContext: 77}, "pixels are 4x4 but the model takes 8x8"},
		{ReadOptions{Side: side, MaxContext: 4}, "context 8 but the model's is 4"},
		{ReadOptions{Side: side, MaxContext: 77, VocabSize: 9}, "row 0 caption 0: token 9"},
	} {
		r := writeStream(t, rows, ctx, side, true, true)
		_, err := ReadSplits(r, []string{"train"}, tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "test.arrow") {
			t.Errorf("want error with %q, got %v", tc.want, err)
		}
	}
	// Without a split column every row goes to the first split.
	r = writeStream(t, rows, ctx, side, true, false)
	got, err = ReadSplits(r, []string{"train", "val"}, ReadOptions{Side: side})
	if err != nil {
		t.Fatal(err)
	}
	if got["train"].Images() != 5 || got["val"].Images() != 0 {
		t.Errorf("no split column: train %d val %d", got["train"].Images(), got["val"].Images())
	}
}

func TestEpochOrder(t *testing.T) {
	a := EpochOrder(1000, 42, 0)
	b := EpochOrder(1000, 42, 0)
	c := EpochOrder(1000, 42, 1)
	d := EpochOrder(1000, 43, 0)
	if !reflect.DeepEqual(a, b) {
		t.Error("same seed and epoch, different order")
	}
	if reflect.DeepEqual(a, c) || reflect.DeepEqual(a, d) {
		t.Error("order does not depend on epoch and seed")
	}
	s := append([]int32(nil), a...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	for i, v := range s {
		if int(v) != i {
			t.Fatalf("not a permutation at %d", i)
		}
	}
	// Roughly uniform: the first position takes each of 4 values about
	// equally over many seeds.
	var counts [4]int
	for seed := int64(0); seed < 4000; seed++ {
		counts[EpochOrder(4, seed, 0)[0]]++
	}
	for v, n := range counts {
		if !(math.Abs(float64(n)-1000) <= 120) {
			t.Errorf("first element %d drawn %d times of 4000", v, n)
		}
	}
	if got := Batches(10, 4); !reflect.DeepEqual(got, []int{0, 4, 8, 10}) {
		t.Errorf("Batches(10,4) = %v", got)
	}
}

// Retrieval metrics on a hand-made case: 3 images, 4 captions, one caption
// text shared by two images (multi-positive), D = 2.
func TestRetrievalMetrics(t *testing.T) {
	d := &Data{
		ImageIDs:  []string{"i0", "i1", "i2"},
		Captions:  []string{"dog", "cat", "dog", "bird"},
		PairImage: []int32{0, 1, 2, 2},
	}
	img := []float32{1, 0, 0, 1, 0.6, 0.8}
	txt := []float32{
		0.6, 0.8, // "dog" of i0: scores i0 .6, i1 .8, i2 1.0 -> i2 first, also relevant -> rank 0
		1, 0, // "cat" of i1: i0 1, i1 0, i2 .6 -> i1 at rank 2
		0, 1, // "dog" of i2: i0 0, i1 1, i2 .8 -> i2 (relevant) at rank 1
		0.6, 0.8, // "bird" of i2: i2 first
	}
	em, err := retrieval(d, img, txt, 2)
	if err != nil {
		t.Fatal(err)
	}
	// t2i ranks: 0, 2, 1, 0
	want := metrics.Scores{R1: 0.5, R5: 1, R10: 1, MRR: (1 + 1.0/3 + 0.5 + 1) / 4}
	if !(math.Abs(em.T2I.R1-want.R1) <= 1e-12) || em.T2I.R5 != 1 || !(math.Abs(em.T2I.MRR-want.MRR) <= 1e-12) {
		t.Errorf("t2i %+v, want %+v", em.T2I, want)
	}
	// i2t: i0 scores captions 0.6, 1, 0, 0.6 -> own caption 0 beaten by caption 1 -> rank 1
	//      i1 scores 0.8, 0, 1, 0.8 -> own caption 1 last -> rank 3
	//      i2 scores 1, .6, .8, 1 -> own captions 2, 3: caption 3 (score 1) beaten only by caption 0 (tie, earlier) -> rank 1
	wantI := metrics.Scores{R1: 0, R5: 1, R10: 1, MRR: (0.5 + 0.25 + 0.5) / 3}
	if em.I2T.R1 != 0 || em.I2T.R5 != 1 || !(math.Abs(em.I2T.MRR-wantI.MRR) <= 1e-12) {
		t.Errorf("i2t %+v, want %+v", em.I2T, wantI)
	}
	if em.Images != 3 || em.Queries != 4 || !(math.Abs(em.RSum-(0.5+1+1+0+1+1)) <= 1e-9) {
		t.Errorf("%+v", em)
	}
}

// A learned logit_scale is clamped at ln 100 after each step (InfoNCE only).
func TestLogitScaleClamp(t *testing.T) {
	base := tinyModelDir(t)
	c := testConfig(base, t.TempDir())
	c.LearnTemperature = true
	c.Epochs = 1
	tr := newTrainer(t, c, base, synthData(1, 4, 2), nil, "", nil)
	p := tr.Model().Param("logit_scale")
	if !p.Trainable {
		t.Fatal("logit_scale frozen with learn_temperature")
	}
	tr.be.Upload(p.W, []float32{5})
	if _, err := tr.Run(); err != nil {
		t.Fatal(err)
	}
	if v := tr.Model().LogitScale(); v != MaxLogitScale {
		t.Errorf("logit_scale %v after training from 5, want clamp %v", v, MaxLogitScale)
	}
	// Fixed temperature: logit_scale is frozen and unchanged.
	c.LearnTemperature = false
	c.OutputDir = t.TempDir()
	tr = newTrainer(t, c, base, synthData(1, 4, 2), nil, "", nil)
	before := tr.Model().LogitScale()
	if tr.Model().Param("logit_scale").Trainable {
		t.Error("logit_scale trainable with a fixed temperature")
	}
	if _, err := tr.Run(); err != nil {
		t.Fatal(err)
	}
	if tr.Model().LogitScale() != before {
		t.Error("fixed temperature changed logit_scale")
	}
	// The sigmoid loss has no clamp: big_vision and transformers have none.
	base = tinySigLIPDir(t)
	c = testConfig(base, t.TempDir())
	c.LossType, c.LearnTemperature, c.Epochs = "sigmoid", true, 1
	tr = newTrainer(t, c, base, synthData(1, 4, 2), nil, "", nil)
	tr.be.Upload(tr.Model().Param("logit_scale").W, []float32{5})
	if _, err := tr.Run(); err != nil {
		t.Fatal(err)
	}
	// One AdamW step moves it by about the learning rate (1e-3).
	if v := tr.Model().LogitScale(); !(math.Abs(float64(v)-5) <= 0.01) {
		t.Errorf("sigmoid loss: logit_scale %v after one step from 5, want about 5 (no clamp at %v)", v, MaxLogitScale)
	}
	// A fixed temperature freezes logit_bias too.
	c.LearnTemperature, c.OutputDir = false, t.TempDir()
	tr = newTrainer(t, c, base, synthData(1, 4, 2), nil, "", nil)
	b0 := tr.Model().LogitBias()
	if tr.Model().Param("logit_bias").Trainable {
		t.Error("logit_bias trainable with a fixed temperature")
	}
	if _, err := tr.Run(); err != nil {
		t.Fatal(err)
	}
	if tr.Model().LogitBias() != b0 {
		t.Errorf("logit_bias %v changed from %v while frozen", tr.Model().LogitBias(), b0)
	}
}
