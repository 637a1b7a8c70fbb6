package embed

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/cputime"
	"github.com/clipline/clipline/internal/embed/embedtest"
	"github.com/clipline/clipline/internal/imageproc"
	"github.com/clipline/clipline/internal/model"
	"github.com/clipline/clipline/internal/stream"
)

// benchStream writes rows random images of side S (and caps captions of 20
// tokens each, ids below vocab, when caps > 0) in record batches of 16 rows.
func benchStream(b *testing.B, rows, S, caps, vocab int) string {
	rng := rand.New(rand.NewPCG(1, 2))
	s := embedtest.Stream{Side: S, BatchRows: 16}
	if caps > 0 {
		s.Context = 77
	}
	for range rows {
		r := embedtest.Row{ID: "x", Pixels: make([]uint8, S*S*3)}
		for k := range r.Pixels {
			r.Pixels[k] = uint8(rng.IntN(256))
		}
		for range caps {
			ids := make([]int32, 77)
			ids[0] = int32(vocab - 2)
			for k := 1; k < 19; k++ {
				ids[k] = int32(1 + rng.IntN(vocab-3))
			}
			ids[19] = int32(vocab - 1)
			r.Tokens = append(r.Tokens, ids)
			r.Captions = append(r.Captions, "c")
		}
		s.Rows = append(s.Rows, r)
	}
	path := filepath.Join(b.TempDir(), "in.arrow")
	s.Write(b, path)
	return path
}

func benchRun(b *testing.B, e *Embedder, in string) Stats {
	out := filepath.Join(b.TempDir(), "out.arrow")
	r, err := stream.Open(in)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	st, err := e.Run(r, RunOptions{Out: out})
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// BenchmarkStageViTB32 is the embed stage's image throughput on a
// ViT-B/32-sized model with random weights: 64 images of 224x224 in record
// batches of 16 rows, batch size 32, read from and written to files. Compare
// with the model alone at the same batch size (internal/model's
// BenchmarkViTB32Embed/batch=32) to see what the stage adds (reading,
// normalising, writing; mostly overlapped with compute):
//
//	go test -run '^$' -bench 'StageViTB32' -cpu 2 ./internal/embed/
//	go test -run '^$' -bench 'ViTB32Embed/batch=32' -cpu 2 ./internal/model/
func BenchmarkStageViTB32(b *testing.B) {
	m, err := model.New(model.ViTB32Config(), cpu.New(), 1)
	if err != nil {
		b.Fatal(err)
	}
	e, err := New(m, imageproc.DefaultConfig(224), Options{BatchSize: 32})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	in := benchStream(b, 64, 224, 0, 0)
	benchRun(b, e, in) // allocate the plan
	b.ResetTimer()
	var images int64
	cpu0 := cputime.Process()
	for b.Loop() {
		images += benchRun(b, e, in).Images
	}
	b.ReportMetric(float64(images)/b.Elapsed().Seconds(), "images/s")
	b.ReportMetric(float64(images)/(cputime.Process()-cpu0).Seconds(), "images/cpu-s")
}

// BenchmarkStageOverhead measures the stage's own cost per row with a model
// so small that the forward passes are cheap (the golden tiny model's
// architecture, random weights): 1024 rows of 32x32 pixels and five 20-token
// captions each, batch size 64. Its rows/s bounds the stage machinery; at
// ViT-B/32 the model's ~tens of ms per image dwarf it.
func BenchmarkStageOverhead(b *testing.B) {
	m, err := model.New(model.TinyConfig(), cpu.New(), 1)
	if err != nil {
		b.Fatal(err)
	}
	e, err := New(m, imageproc.DefaultConfig(32), Options{BatchSize: 64})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	in := benchStream(b, 1024, 32, 5, m.Config().Text.VocabSize)
	b.ResetTimer()
	var rows int64
	cpu0 := cputime.Process()
	for b.Loop() {
		rows += benchRun(b, e, in).Rows
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(rows)/(cputime.Process()-cpu0).Seconds(), "rows/cpu-s")
}
