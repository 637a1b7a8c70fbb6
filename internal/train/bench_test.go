package train

import (
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/model"
)

// BenchmarkTrain measures training throughput (pairs/s) of whole optimizer
// steps — forward both towers, loss, backward, clipping, AdamW — on the CPU
// backend with all cores, at batch 32:
//
//	go test -bench BenchmarkTrain -run '^$' -benchtime 3x ./internal/train/
func BenchmarkTrain(b *testing.B) {
	cases := []struct {
		name      string
		cfg       func() model.Config
		lora      bool
		gradCache int
	}{
		{"tiny/lora", model.TinyConfig, true, 0},
		{"tiny/full", model.TinyConfig, false, 0},
		{"vitb32/lora", model.ViTB32Config, true, 0},
		{"vitb32/lora-gradcache8", model.ViTB32Config, true, 8},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			mc := tc.cfg()
			dir := filepath.Join(b.TempDir(), "base")
			m, err := model.New(mc, cpu.NewWorkers(1), 1)
			if err != nil {
				b.Fatal(err)
			}
			if err := m.Save(dir); err != nil {
				b.Fatal(err)
			}
			m.Free()
			const batch = 32
			data := benchData(mc.Vision.ImageSize, mc.Text.MaxPositionEmbeddings, batch, mc.Text.VocabSize)
			c := testConfig(dir, b.TempDir())
			c.BatchSize = batch
			c.UseLoRA = tc.lora
			c.LoRAR, c.LoRAAlpha, c.LoRADropout = 16, 32, 0.05
			if tc.gradCache > 0 {
				c.UseGradientCache, c.GradientCacheChunkSize = true, tc.gradCache
			}
			tr, err := New(Options{Config: c, ModelDir: dir, Backend: cpu.New(), Train: data, Log: io.Discard})
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			pairs := make([]int32, batch)
			for i := range pairs {
				pairs[i] = int32(i)
			}
			// One untimed step: first-touch allocation of gradients and plans.
			if err := tr.optimizerStep([][]int32{pairs}, pairs); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if err := tr.optimizerStep([][]int32{pairs}, pairs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(batch*b.N)/time.Since(start).Seconds(), "pairs/s")
		})
	}
}

// benchData is n pairs of distinct random images and captions of 12
// tokens (a typical Flickr30k caption length) in a context of ctx.
func benchData(side, ctx, n, vocab int) *Data {
	r := rand.New(rand.NewPCG(5, 6))
	d := &Data{Name: "bench", Side: side, Context: ctx, Pixels: NewImages(side)}
	for i := 0; i < n; i++ {
		d.ImageIDs = append(d.ImageIDs, "")
		px := make([]byte, side*side*3)
		for k := range px {
			px[k] = byte(r.IntN(256))
		}
		d.Pixels.Append(px)
		tk := make([]int32, ctx)
		tk[0] = int32(vocab - 2)
		for k := 1; k < 11; k++ {
			tk[k] = int32(1 + r.IntN(vocab-3))
		}
		tk[11] = int32(vocab - 1)
		d.Tokens = append(d.Tokens, tk...)
		d.Captions = append(d.Captions, "")
		d.PairImage = append(d.PairImage, int32(i))
	}
	return d
}
