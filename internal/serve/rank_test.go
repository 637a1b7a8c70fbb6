package serve

import (
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/clipline/clipline/internal/stream"
)

// rankResults runs the rank stage (built from ../../rank) with --top-k k
// --results over the fixture's stream and returns its rows by direction:
// query (caption text for t2i, image_id for i2t) → each such query's
// result ids, texts and scores (a caption text may be several queries).
func rankResults(t *testing.T, k int) map[string]map[string][]ranked {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "rank")
	if out, err := exec.Command("go", "build", "-o", bin, "../../rank").CombinedOutput(); err != nil {
		t.Fatalf("go build rank: %v\n%s", err, out)
	}
	res := filepath.Join(dir, "results.arrow")
	cmd := exec.Command(bin, "--in", fix.stream, "--top-k", fmt.Sprint(k), "--results", res, "--out", filepath.Join(dir, "metrics.json"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rank: %v\n%s", err, out)
	}
	r, err := stream.Open(res)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := map[string]map[string][]ranked{"t2i": {}, "i2t": {}}
	for r.Next() {
		rec := r.Batch()
		col := func(name string) int {
			for i, f := range rec.Schema().Fields() {
				if f.Name == name {
					return i
				}
			}
			t.Fatalf("rank --results has no %s", name)
			return -1
		}
		dirs := rec.Column(col("direction")).(*array.String)
		qid := rec.Column(col("query_id")).(*array.String)
		qtext := rec.Column(col("query_text")).(*array.String)
		ids := rec.Column(col("result_ids")).(*array.List)
		texts := rec.Column(col("result_texts")).(*array.List)
		scores := rec.Column(col("scores")).(*array.List)
		idv := ids.ListValues().(*array.String)
		textv := texts.ListValues().(*array.String)
		scorev := scores.ListValues().(*array.Float32)
		for i := range int(rec.NumRows()) {
			var q ranked
			lo, hi := ids.ValueOffsets(i)
			for j := lo; j < hi; j++ {
				q.ids = append(q.ids, idv.Value(int(j)))
			}
			lo, hi = scores.ValueOffsets(i)
			for j := lo; j < hi; j++ {
				q.scores = append(q.scores, scorev.Value(int(j)))
			}
			if !texts.IsNull(i) {
				lo, hi = texts.ValueOffsets(i)
				for j := lo; j < hi; j++ {
					q.texts = append(q.texts, textv.Value(int(j)))
				}
			}
			key := qid.Value(i)
			if dirs.Value(i) == "t2i" {
				key = qtext.Value(i)
			}
			out[dirs.Value(i)][key] = append(out[dirs.Value(i)][key], q)
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

type ranked struct {
	ids, texts []string
	scores     []float32
}

// TestRankOrder: a text query's top K is exactly rank's for that caption
// over the same images (ids in order and scores bit for bit), and an
// image's top K captions (target captions) exactly rank's image to text.
// embed encodes captions --batch-size at a time and serve one or a few,
// so this also holds the text encoder to giving a caption the same vector
// whatever batch it is in.
func TestRankOrder(t *testing.T) {
	fixture(t)
	const K = 10
	want := rankResults(t, K)
	o := options(nil)
	o.Captions = fix.caps
	_, ts := server(t, o)
	its := items(t)
	var caps []string
	for _, it := range its {
		caps = append(caps, it.Captions...)
	}
	for _, c := range caps {
		ws := want["t2i"][c]
		if len(ws) == 0 {
			t.Fatalf("rank has no query %q", c)
		}
		var got Response
		if code, body := call(t, "POST", ts.URL+"/search/text?query="+urlq(c)+fmt.Sprintf("&top_k=%d", K), "", nil, &got); code != 200 {
			t.Fatalf("%q: %d %s", c, code, body)
		}
		// A text under several images is as many queries; any will do.
		same := false
		for _, w := range ws {
			ok := len(got.Results) == len(w.ids)
			for i := 0; ok && i < len(w.ids); i++ {
				r := got.Results[i]
				ok = r.ImageID == w.ids[i] && math.Float32bits(r.Score) == math.Float32bits(w.scores[i])
			}
			same = same || ok
		}
		if !same {
			t.Errorf("%q: serve's top %d differs from rank's:\nserve %v\nrank  %v %v", c, K, got.Results, ws[0].ids, ws[0].scores)
		}
	}

	// Image to text: the images' vectors are the stream's, the captions'
	// too, so every list is exact.
	for _, it := range its {
		w := want["i2t"][it.ImageID][0]
		var got Response
		if code, body := searchJSON(t, ts.URL, Request{ImageID: it.ImageID, Target: "captions", TopK: ptr(K)}, &got); code != 200 {
			t.Fatalf("%s: %d %s", it.ImageID, code, body)
		}
		if len(got.Results) != len(w.ids) {
			t.Fatalf("%s: %d captions, rank %d", it.ImageID, len(got.Results), len(w.ids))
		}
		for i, r := range got.Results {
			if r.ImageID != w.ids[i] || r.Caption != w.texts[i] || math.Float32bits(r.Score) != math.Float32bits(w.scores[i]) {
				t.Errorf("%s: caption %d is %s %q %v; rank's %s %q %v", it.ImageID, i+1, r.ImageID, r.Caption, r.Score, w.ids[i], w.texts[i], w.scores[i])
				break
			}
		}
	}
}
