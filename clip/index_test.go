package clip_test

import (
	"fmt"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clipline/clipline/clip"
	"github.com/clipline/clipline/internal/index"
	"github.com/clipline/clipline/internal/index/indextest"
	"github.com/clipline/clipline/internal/stream"
)

// Searching a bundle from Go: a Go program opens the bundle that the index
// stage wrote and searches it with the model that built it.
// (No Output comment: it needs a bundle, made by `make -f pipeline.mk serve`.)
func ExampleOpenIndex() {
	ix, err := clip.OpenIndex("out/default/index")
	if err != nil {
		log.Fatal(err)
	}
	defer ix.Close()
	m, err := clip.Load("out/default/run/final") // the model the index was built with
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	hits, err := ix.SearchText(m, "a red car", 5)
	if err != nil {
		log.Fatal(err)
	}
	for _, h := range hits {
		fmt.Printf("%d %.3f %s %s\n", h.Rank, h.Score, h.ImageID, h.ImagePath)
	}
}

// bundle indexes n synthetic scenes embedded with the base model (as
// `prepare synthetic | tokenize | decode | embed | index` does) and opens it.
func bundle(t *testing.T, n int) *clip.Index {
	t.Helper()
	dir := t.TempDir()
	in, err := stream.Open(indextest.Stream(t, dir, n))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if _, err := index.Build(in, filepath.Join(dir, "index"), index.BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	ix, err := clip.OpenIndex(filepath.Join(dir, "index"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	return ix
}

// TestIndexSearch checks the bundle's answers against the model alone: the
// scores of a text query are the dot products of its embedding with each
// indexed image file's embedding (EncodeImageFiles on image_path), best
// first; an indexed image and its image_id find themselves first.
func TestIndexSearch(t *testing.T) {
	const n = 12
	ix := bundle(t, n)
	m, err := clip.Load(indextest.BaseModel())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if ix.Len() != n || ix.Dim() != m.Dim() || ix.Kind() != "images" {
		t.Fatalf("index of %d %s, dim %d; want %d images of the model's dim %d", ix.Len(), ix.Kind(), ix.Dim(), n, m.Dim())
	}
	all, err := ix.SearchVector(make([]float32, ix.Dim()), n+5)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != n {
		t.Fatalf("k beyond the index: %d hits, want all %d", len(all), n)
	}
	paths := make([]string, n)
	for i, h := range all {
		paths[i] = h.ImagePath
	}
	imgs, err := m.EncodeImageFiles(paths)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string][]float32{}
	for i, h := range all {
		byID[h.ImageID] = imgs[i]
	}

	query := all[3].Captions[0]
	hits, err := ix.SearchText(m, query, 5)
	if err != nil {
		t.Fatal(err)
	}
	q, err := m.EncodeText([]string{query})
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(all)
	for i := range want {
		want[i].Score = clip.Dot(q[0], byID[want[i].ImageID])
	}
	slices.SortStableFunc(want, func(a, b clip.Hit) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return a.Row - b.Row
	})
	if len(hits) != 5 {
		t.Fatalf("%d hits for k=5", len(hits))
	}
	for i, h := range hits {
		if h.Rank != i+1 {
			t.Errorf("hit %d has rank %d", i, h.Rank)
		}
		if d := h.Score - want[i].Score; !(d <= 1e-5 && d >= -1e-5) {
			t.Errorf("rank %d: %s score %g; the model scores %s %g", i+1, h.ImageID, h.Score, want[i].ImageID, want[i].Score)
		}
		// The same image unless two scores are too close to order reliably.
		if h.ImageID != want[i].ImageID && !(i+1 < len(want) && want[i].Score-want[i+1].Score < 1e-5) {
			t.Errorf("rank %d: %s, the model ranks %s there", i+1, h.ImageID, want[i].ImageID)
		}
		if h.ImagePath == "" || len(h.Captions) == 0 || h.Split == "" {
			t.Errorf("rank %d: hit without its metadata: %+v", i+1, h)
		}
	}

	// An indexed image finds itself, by its pixels and by its id.
	f, err := os.Open(all[5].ImagePath)
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := image.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	for what, search := range map[string]func() ([]clip.Hit, error){
		"SearchImage":     func() ([]clip.Hit, error) { return ix.SearchImage(m, img, 3) },
		"SearchImageFile": func() ([]clip.Hit, error) { return ix.SearchImageFile(m, all[5].ImagePath, 3) },
		"Similar":         func() ([]clip.Hit, error) { return ix.Similar(all[5].ImageID, 3) },
	} {
		hits, err := search()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if len(hits) != 3 || hits[0].ImageID != all[5].ImageID || !(hits[0].Score > 0.999) {
			t.Errorf("%s of %s: %+v; want it first with score 1", what, all[5].ImageID, hits)
		}
	}
}

// TestIndexRefuses: a query of the wrong size, a bad k, an unknown image_id
// and a model other than the index's are errors that say so.
func TestIndexRefuses(t *testing.T) {
	ix := bundle(t, 4)
	other, err := clip.Load(modelWithVocab(t)) // a random model, not the base
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for what, call := range map[string]func() error{
		"dimensions": func() error { _, err := ix.SearchVector(make([]float32, ix.Dim()+1), 3); return err },
		"k is 0":     func() error { _, err := ix.SearchVector(make([]float32, ix.Dim()), 0); return err },
		"no-such-id": func() error { _, err := ix.Similar("no-such-id", 3); return err },
		"built with": func() error { _, err := ix.SearchText(other, "a dog", 3); return err },
	} {
		err := call()
		if err == nil || !strings.Contains(err.Error(), what) {
			t.Errorf("%s: error %v, want one saying %q", what, err, what)
		}
	}
	if err := ix.CheckModel(other); err == nil || !strings.Contains(err.Error(), ix.ModelSource()) {
		t.Errorf("CheckModel of another model: %v; want an error naming the index's model %s", err, ix.ModelSource())
	}
}
