package report

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/index/indextest"
	"github.com/clipline/clipline/internal/results"
	"github.com/clipline/clipline/internal/search/searchtest"
)

const fixN, fixCaps, fixDim = 40, 2, 16

// fixture is two embedded streams of the same fixN images ("before" and
// "after" models: random vectors, the after captions pulled toward their
// image), ranked by the real rank binary.
type fixture struct {
	dir     string
	rows    [2][]indextest.Row
	results [2]*results.File
	metrics [2]string
	paths   map[string]string
}

func unit(rng *rand.Rand) []float32 { return searchtest.RandomUnit(rng, 1, fixDim) }

func makeFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), paths: map[string]string{}}
	rank := filepath.Join(f.dir, "rank")
	if out, err := exec.Command("go", "build", "-o", rank, "../../rank").CombinedOutput(); err != nil {
		t.Fatalf("go build rank: %v\n%s", err, out)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range fixN {
		id := fmt.Sprintf("img-%02d", i)
		p := filepath.Join(f.dir, id+".png")
		img := image.NewRGBA(image.Rect(0, 0, 32, 24))
		for j := range img.Pix {
			img.Pix[j] = uint8(i*6 + j%3*40)
		}
		img.Set(0, 0, color.RGBA{255, 0, 0, 255})
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		f.paths[id] = p
		imgVec := unit(rng)
		for m := range 2 {
			r := indextest.Row{ID: id, Path: p, Split: "test", Image: imgVec}
			for c := range fixCaps {
				r.Captions = append(r.Captions, fmt.Sprintf("caption %d of image %d", c, i))
				v := unit(rng)
				if m == 1 { // fine-tuned: nearer its image
					for k := range v {
						v[k] = 0.5*v[k] + 0.5*imgVec[k]
					}
				}
				r.CaptionVecs = append(r.CaptionVecs, v)
			}
			f.rows[m] = append(f.rows[m], r)
		}
	}
	for m, name := range []string{"before", "after"} {
		emb := filepath.Join(f.dir, name+".arrow")
		indextest.Write(t, emb, fixDim, 16, f.rows[m], nil)
		res := filepath.Join(f.dir, name+".results.arrow")
		f.metrics[m] = filepath.Join(f.dir, name+".json")
		if out, err := exec.Command(rank, "--in", emb, "--top-k", "6", "--results", res, "--out", f.metrics[m]).CombinedOutput(); err != nil {
			t.Fatalf("rank: %v\n%s", err, out)
		}
		var err error
		if f.results[m], err = results.Read(res); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) page(t *testing.T) *Page {
	t.Helper()
	p, err := BuildPage(f.input(t))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// input is BuildPage's input over the fixture, thumbnails from the files.
func (f *fixture) input(t *testing.T) HTMLInput {
	t.Helper()
	before, _, err := LoadMetrics(f.metrics[0])
	if err != nil {
		t.Fatal(err)
	}
	after, _, err := LoadMetrics(f.metrics[1])
	if err != nil {
		t.Fatal(err)
	}
	return HTMLInput{ZeroShot: before, FineTuned: after, Before: f.results[0], After: f.results[1], Images: &Images{Paths: f.paths}}
}

// ranking is the reference: every item scored by a dot product in float64,
// best first, ties by index.
func ranking(q []float32, items [][]float32) (order []int, scores []float64) {
	scores = make([]float64, len(items))
	for i, it := range items {
		for k := range q {
			scores[i] += float64(q[k]) * float64(it[k])
		}
	}
	order = make([]int, len(items))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if scores[a] > scores[b] {
			return -1
		} else if scores[a] < scores[b] {
			return 1
		}
		return 0
	})
	return order, scores
}

// TestGalleriesAgreeWithRank checks each gallery row against ranks and
// scores recomputed from the embeddings rank read.
func TestGalleriesAgreeWithRank(t *testing.T) {
	f := makeFixture(t)
	p := f.page(t)
	want := min(SampleQueries, fixN*fixCaps)
	kinds := map[string]int{}
	for _, r := range p.T2I {
		kinds[r.Kind]++
	}
	if kinds["sample"] != want || kinds["win"] == 0 || kinds["win"] > Extremes || kinds["loss"] > Extremes || len(p.I2T) != SampleImages {
		t.Fatalf("rows: %v t2i kinds, %d i2t", kinds, len(p.I2T))
	}
	var images [][]float32
	var captions [][]float32
	var capImage []int
	for i, r := range f.rows[0] {
		images = append(images, r.Image)
		for range r.Captions {
			capImage = append(capImage, i)
		}
	}
	check := func(what string, hits []Hit, firstRank int, order []int, scores []float64, id func(int) string, relevant func(int) bool) {
		t.Helper()
		wantFirst := 0
		for pos, it := range order {
			if relevant(it) {
				wantFirst = pos + 1
				break
			}
		}
		if firstRank != wantFirst {
			t.Errorf("%s: first relevant rank %d, want %d", what, firstRank, wantFirst)
		}
		if len(hits) == 0 {
			t.Errorf("%s: no hits", what)
		}
		for j, h := range hits {
			it := order[j]
			if h.Rank != j+1 || h.ID != id(it) || h.Relevant != relevant(it) || !(math.Abs(float64(h.Score)-scores[it]) <= 1e-5) {
				t.Errorf("%s: hit %d is %+v, want %s score %.6f relevant %v", what, j, h, id(it), scores[it], relevant(it))
			}
		}
	}
	for m := range 2 {
		captions = captions[:0]
		for _, r := range f.rows[m] {
			captions = append(captions, r.CaptionVecs...)
		}
		for _, row := range p.T2I {
			hits, first := row.Before, row.BeforeRank
			if m == 1 {
				hits, first = row.After, row.AfterRank
			}
			c := row.Index
			if want := fmt.Sprintf("caption %d of image %d", c%fixCaps, capImage[c]); row.Caption != want {
				t.Errorf("t2i query %d: caption %q, want %q", c, row.Caption, want)
			}
			order, scores := ranking(captions[c], images)
			check(fmt.Sprintf("model %d t2i query %d", m, c), hits, first, order, scores,
				func(i int) string { return f.rows[0][i].ID }, func(i int) bool { return i == capImage[c] })
		}
		for _, row := range p.I2T {
			hits, first := row.Before, row.BeforeRank
			if m == 1 {
				hits, first = row.After, row.AfterRank
			}
			i := row.Index
			if row.ID != f.rows[0][i].ID || !strings.HasPrefix(string(row.Src), "data:image/jpeg;base64,") {
				t.Errorf("i2t row %d: id %q, src %.40q", i, row.ID, row.Src)
			}
			order, scores := ranking(images[i], captions)
			check(fmt.Sprintf("model %d i2t query %d", m, i), hits, first, order, scores,
				func(c int) string { return f.rows[0][capImage[c]].ID }, func(c int) bool { return capImage[c] == i })
			for j, h := range hits {
				if want := fmt.Sprintf("caption %d of image %d", order[j]%fixCaps, capImage[order[j]]); h.Text != want {
					t.Errorf("model %d i2t query %d hit %d: %q, want %q", m, i, j, h.Text, want)
				}
			}
		}
	}
	// Wins improved and losses got worse, largest first.
	last := map[string]int{}
	for _, r := range p.T2I {
		d := r.BeforeRank - r.AfterRank
		switch r.Kind {
		case "win":
			if d <= 0 || last["win"] != 0 && d > last["win"] {
				t.Errorf("win %+v out of order", r.Index)
			}
			last["win"] = d
		case "loss":
			if d >= 0 || last["loss"] != 0 && d < last["loss"] {
				t.Errorf("loss %+v out of order", r.Index)
			}
			last["loss"] = d
		}
	}
}

// TestRecallAtK checks the chart's curve against rank's own R@1/5/10.
func TestRecallAtK(t *testing.T) {
	f := makeFixture(t)
	for m := range 2 {
		s, _, err := LoadMetrics(f.metrics[m])
		if err != nil {
			t.Fatal(err)
		}
		by, err := byQuery(f.results[m])
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range []struct {
			rows        []results.Row
			r1, r5, r10 float64
		}{{by["t2i"], s.T2I.R1, s.T2I.R5, s.T2I.R10}, {by["i2t"], s.I2T.R1, s.I2T.R5, s.I2T.R10}} {
			got := RecallAtK(d.rows)
			if !(math.Abs(got[0]-d.r1) <= 1e-12 && math.Abs(got[4]-d.r5) <= 1e-12 && math.Abs(got[9]-d.r10) <= 1e-12) {
				t.Errorf("model %d: Recall@K %v, rank says R@1 %v R@5 %v R@10 %v", m, got, d.r1, d.r5, d.r10)
			}
		}
	}
}

func TestTicks(t *testing.T) {
	for _, c := range []struct {
		lo, hi float64
		want   []float64
	}{
		{0, 1, []float64{0, 0.2, 0.4, 0.6, 0.8, 1}},
		{20, 282, []float64{0, 100, 200, 300}},
		{0.0000166, 0.002, []float64{0, 0.0005, 0.001, 0.0015, 0.002}},
	} {
		got, _, _ := ticks(c.lo, c.hi)
		same := len(got) == len(c.want)
		for i := 0; same && i < len(got); i++ {
			same = math.Abs(got[i]-c.want[i]) <= 1e-12 && tickLabel(got[i]) == tickLabel(c.want[i])
		}
		if !same {
			t.Errorf("ticks(%v, %v) = %v, want %v", c.lo, c.hi, got, c.want)
		}
	}
}
