package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/clipline/clipline/internal/metrics"
	"github.com/clipline/clipline/internal/stream"
	"github.com/clipline/clipline/internal/stream/streamtest"
)

type row struct {
	id, split string
	img       []float32 // nil: no image_embedding column in the stream
	caps      []string
	capEmb    [][]float32
}

// writeStream writes rows with the columns their fields imply.
func writeStream(t *testing.T, path string, rows []row, withCapEmb bool) {
	t.Helper()
	var ids, splits []string
	var caps [][]string
	img := stream.Vectors{}
	cemb := stream.VectorLists{Offsets: []int32{0}}
	for _, r := range rows {
		ids, splits, caps = append(ids, r.id), append(splits, r.split), append(caps, r.caps)
		img.Width = len(r.img)
		img.Values = append(img.Values, r.img...)
		for _, e := range r.capEmb {
			cemb.Width = len(e)
			cemb.Values = append(cemb.Values, e...)
		}
		cemb.Offsets = append(cemb.Offsets, int32(len(cemb.Values)/max(cemb.Width, 1)))
	}
	if cemb.Width == 0 {
		cemb.Width = 2
	}
	fields := []arrow.Field{stream.ImageIDField(), stream.SplitField(), stream.CaptionsField()}
	cols := []arrow.Array{stream.NewStrings(ids), stream.NewStrings(splits), stream.NewStringLists(caps)}
	if img.Width > 0 {
		fields = append(fields, stream.ImageEmbeddingField(img.Width))
		cols = append(cols, stream.NewImageEmbeddings(img))
	}
	if withCapEmb {
		fields = append(fields, stream.CaptionEmbeddingsField(cemb.Width))
		cols = append(cols, stream.NewCaptionEmbeddings(cemb))
	}
	schema := stream.WithProvenance(arrow.NewSchema(fields, nil), "embed", []string{"--model", "m"})
	rec := array.NewRecordBatch(schema, cols, int64(len(rows)))
	defer rec.Release()
	streamtest.WriteFile(t, path, schema, stream.Options{}, rec)
}

// handRows is the worked example of internal/metrics' hand-computed test,
// plus train rows that --split test must leave out.
func handRows() []row {
	return []row{
		{id: "g0", split: "test", img: []float32{1, 0}, caps: []string{"a dog", "red car"}, capEmb: [][]float32{{0, 1}, {1, 0}}},
		{id: "t0", split: "train", img: []float32{0, 1}, caps: []string{"a dog"}, capEmb: [][]float32{{0, 1}}},
		{id: "g1", split: "test", img: []float32{0, 1}, caps: []string{"a dog"}, capEmb: [][]float32{{0.6, 0.8}}},
		{id: "g2", split: "test", img: []float32{0.6, 0.8}, caps: []string{"a cat"}, capEmb: [][]float32{{1, 0}}},
	}
}

func runRank(t *testing.T, args ...string) (metrics.Summary, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(args, &stdout, &stderr)
	var out metrics.Summary
	if err == nil {
		if jerr := json.Unmarshal(stdout.Bytes(), &out); jerr != nil {
			t.Fatalf("stdout is not JSON: %v\n%s", jerr, stdout.String())
		}
	}
	return out, stderr.String(), err
}

func near(t *testing.T, name string, got, want float64) {
	t.Helper()
	if !(math.Abs(got-want) <= 1e-6) {
		t.Errorf("%s = %.6f, want %.6f", name, got, want)
	}
}

func TestRankHandComputed(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "emb.arrow")
	writeStream(t, in, handRows(), true)
	res := filepath.Join(dir, "top.arrow")
	out, table, err := runRank(t, "--in", in, "--split", "test", "--top-k", "2", "--results", res)
	if err != nil {
		t.Fatal(err)
	}
	l := func(r float64) float64 { return 1 / math.Log2(r+1) }
	idcg2 := l(1) + l(2)
	near(t, "t2i r1", out.T2I.R1, 0.5)
	near(t, "t2i r5", out.T2I.R5, 1)
	near(t, "t2i mrr", out.T2I.MRR, 0.75)
	near(t, "t2i ndcg10", out.T2I.NDCG10, ((l(1)+l(3))/idcg2+1+(l(2)+l(3))/idcg2+l(2))/4)
	near(t, "i2t r1", out.I2T.R1, 1.0/3)
	near(t, "i2t r10", out.I2T.R10, 1)
	near(t, "i2t mrr", out.I2T.MRR, (1+0.5+0.25)/3)
	near(t, "i2t ndcg10", out.I2T.NDCG10, ((l(1)+l(4))/idcg2+l(2)+l(4))/3)
	near(t, "rsum", out.RSum, 0.5+1+1+1.0/3+1+1)
	if out.Images != 3 || out.Queries != 4 {
		t.Errorf("images %d queries %d, want 3 and 4", out.Images, out.Queries)
	}
	if !strings.Contains(table, "text→image") || !strings.Contains(table, "50.00") {
		t.Errorf("stderr table:\n%s", table)
	}

	// The results stream: one row per query, t2i first.
	r, err := stream.Open(res)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if steps, _ := stream.Provenance(r.Schema()); len(steps) != 2 || steps[0].Stage != "embed" || steps[1].Stage != "rank" {
		t.Errorf("results provenance %+v", steps)
	}
	var dirs, qids, firstIDs []string
	var texts []string
	for r.Next() {
		rec := r.Batch()
		d, _ := stream.Strings(rec, "direction")
		q, _ := stream.Strings(rec, "query_id")
		ids, err := stream.StringLists(rec, "result_ids")
		if err != nil {
			t.Fatal(err)
		}
		dirs, qids = append(dirs, d...), append(qids, q...)
		for _, l := range ids {
			firstIDs = append(firstIDs, strings.Join(l, ","))
		}
		qt := rec.Column(2).(*array.String)
		for i := range qt.Len() {
			texts = append(texts, qt.ValueStr(i))
		}
		sc := rec.Column(8).(*array.List)
		if s, e := sc.ValueOffsets(0); e-s != 2 {
			t.Errorf("first query has %d scores, want 2", e-s)
		}
	}
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	if !slices.Equal(dirs, []string{"t2i", "t2i", "t2i", "t2i", "i2t", "i2t", "i2t"}) ||
		!slices.Equal(qids, []string{"g0", "g0", "g1", "g2", "g0", "g1", "g2"}) {
		t.Errorf("results rows %v %v", dirs, qids)
	}
	// c0 "a dog" (0,1): g1 then g2. g0 (1,0): captions c1 (of g0), c3 (of g2).
	if firstIDs[0] != "g1,g2" || firstIDs[4] != "g0,g2" {
		t.Errorf("top-2 ids %v", firstIDs)
	}
	if texts[0] != "a dog" || texts[4] != array.NullValueStr {
		t.Errorf("query texts %v", texts)
	}
}

func TestRankGallery(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, "q.arrow")
	g := filepath.Join(dir, "g.arrow")
	// Queries carry no image embeddings; the gallery has images A, B, C.
	writeStream(t, q, []row{
		{id: "A", split: "test", caps: []string{"x"}, capEmb: [][]float32{{1, 0}}},
		{id: "B", split: "test", caps: []string{"y"}, capEmb: [][]float32{{1, 0}}},
	}, true)
	writeStream(t, g, []row{
		{id: "C", split: "test", img: []float32{1, 0}},
		{id: "A", split: "test", img: []float32{0.8, 0.6}},
		{id: "B", split: "test", img: []float32{0, 1}},
	}, false)
	res := filepath.Join(dir, "top.arrow")
	out, _, err := runRank(t, "--in", q, "--gallery", g, "--top-k", "5", "--results", res, "--compress", "zstd")
	if err != nil {
		t.Fatal(err)
	}
	r, err := stream.Open(res)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var ids []string
	for r.Next() {
		l, _ := stream.StringLists(r.Batch(), "result_ids")
		for _, x := range l {
			ids = append(ids, strings.Join(x, ","))
		}
	}
	// Two caption queries over 3 images, then 3 image queries over 2 captions.
	if r.Err() != nil || !slices.Equal(ids, []string{"C,A,B", "C,A,B", "A,B", "A,B", "A,B"}) {
		t.Errorf("results %v %v", ids, r.Err())
	}
	// "x" (row A): C 1, A .8, B 0 -> A at 2. "y" (row B): B at 3.
	near(t, "t2i r1", out.T2I.R1, 0)
	near(t, "t2i mrr", out.T2I.MRR, (0.5+1.0/3)/2)
	// Image A over captions x (.8), y (.8): tie, x first -> 1. B: x 0, y 0 -> y at 2.
	near(t, "i2t r1", out.I2T.R1, 0.5)
	if out.Images != 3 || out.Queries != 2 {
		t.Errorf("images %d queries %d", out.Images, out.Queries)
	}
}

func TestRankErrors(t *testing.T) {
	dir := t.TempDir()
	noEmb := filepath.Join(dir, "tok.arrow")
	writeStream(t, noEmb, handRows(), false)
	emb := filepath.Join(dir, "emb.arrow")
	writeStream(t, emb, handRows(), true)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--in", noEmb}, noEmb + ": column caption_embeddings missing; run embed first"},
		{[]string{"--in", emb, "--split", "val"}, `no rows with split "val" (splits present: test, train)`},
		{[]string{"--in", emb, "--top-k", "3"}, "--top-k and --results go together"},
	} {
		_, _, err := runRank(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
}

// TestRankOut: --out FILE holds exactly the JSON that stdout would, and
// stdout stays empty.
func TestRankOut(t *testing.T) {
	dir := t.TempDir()
	emb := filepath.Join(dir, "emb.arrow")
	writeStream(t, emb, handRows(), true)
	var want, stdout, stderr bytes.Buffer
	if err := run([]string{"--in", emb}, &want, &stderr); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "metrics.json")
	if err := run([]string{"--in", emb, "--out", out}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, want.Bytes()) || stdout.Len() != 0 || want.Len() == 0 {
		t.Errorf("--out: file %q (%v), stdout %q, want the file to hold %q", got, err, stdout.String(), want.String())
	}
}

// TestRankBinary runs the built command on stdin: success, and a truncated
// stream failing with one line and a non-zero exit.
func TestRankBinary(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "rank")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	in := filepath.Join(dir, "emb.arrows") // a stream, to cut its end marker off below
	writeStream(t, in, handRows(), true)
	data, _ := os.ReadFile(in)

	cmd := exec.Command(bin, "--split", "test")
	cmd.Stdin = bytes.NewReader(data)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("rank: %v\n%s", err, stderr.String())
	}
	var out metrics.Summary
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || out.Images != 3 {
		t.Errorf("stdout %s (%v)", stdout.String(), err)
	}

	cmd = exec.Command(bin)
	cmd.Stdin = bytes.NewReader(data[:len(data)-8]) // no end-of-stream marker
	stdout.Reset()
	stderr.Reset()
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Fatalf("truncated input: exit %v", err)
	}
	if msg := stderr.String(); strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "rank: stdin: batch 2") || !strings.Contains(msg, "end-of-stream marker") {
		t.Errorf("stderr %q", msg)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout on failure: %q", stdout.String())
	}
}
