package clip_test

import (
	"fmt"
	"log"
	"path/filepath"
	"slices"
	"testing"

	"github.com/clipline/clipline/clip"
)

// Loading a model by hub id (downloaded once into the cache) or from a
// checkpoint directory, such as one written by the train stage.
// (No Output comment: examples that download are compiled, not run.)
func ExampleLoad() {
	m, err := clip.Load("openai/clip-vit-base-patch32", clip.WithBatchSize(32))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	emb, err := m.EncodeText([]string{"a photo of a dog", "a photo of a cat"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(emb), m.Dim()) // 2 512
}

// Text-to-image search over a folder of images: embed the images once, then
// rank them by cosine similarity (a dot product of normalised embeddings).
func Example_search() {
	m, err := clip.Load("out/default/model") // a fine-tuned checkpoint directory
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	for _, r := range search(m, "photos/*.jpg", "two dogs playing in the snow", 3) {
		fmt.Printf("%.3f %s\n", r.score, r.path)
	}
}

type hit struct {
	path  string
	score float32
}

// search ranks the images matching glob for query, best first, and returns
// the top k.
func search(m *clip.Model, glob, query string, k int) []hit {
	paths, err := filepath.Glob(glob)
	if err != nil {
		log.Fatal(err)
	}
	imgs, err := m.EncodeImageFiles(paths)
	if err != nil {
		log.Fatal(err)
	}
	q, err := m.EncodeText([]string{query})
	if err != nil {
		log.Fatal(err)
	}
	hits := make([]hit, len(paths))
	for i, v := range imgs {
		hits[i] = hit{paths[i], clip.Dot(q[0], v)}
	}
	slices.SortStableFunc(hits, func(a, b hit) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return 0
	})
	return hits[:min(k, len(hits))]
}

// TestExampleSearch runs Example_search's search on a tiny random model
// (scores are meaningless, the mechanics are checked): every image is scored
// by the dot product of its embedding with the query's, best first.
func TestExampleSearch(t *testing.T) {
	paths, _ := testImages(t)
	m, err := clip.Load(modelWithVocab(t))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	hits := search(m, filepath.Join(filepath.Dir(paths[0]), "*"), "a red circle", 10)
	if len(hits) != len(paths) {
		t.Fatalf("%d hits for %d images", len(hits), len(paths))
	}
	q, _ := m.EncodeText([]string{"a red circle"})
	for i, h := range hits {
		v, err := m.EncodeImageFiles([]string{h.path})
		if err != nil {
			t.Fatal(err)
		}
		if d := clip.Dot(q[0], v[0]) - h.score; !(d <= 1e-5 && d >= -1e-5) {
			t.Errorf("%s: score %g, recomputed %g", h.path, h.score, h.score+d)
		}
		if i > 0 && !(h.score <= hits[i-1].score) {
			t.Errorf("hits not sorted: %v", hits)
		}
		if !(h.score >= -1.0001 && h.score <= 1.0001) {
			t.Errorf("cosine %g outside [-1, 1]", h.score)
		}
	}
}
