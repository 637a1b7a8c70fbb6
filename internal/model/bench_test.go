package model

import (
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/cputime"
)

// BenchmarkViTB32Embed measures image embedding throughput of a
// ViT-B/32-sized model with random weights (no download) on all cores
// (GOMAXPROCS; run with -cpu 2 for the 2-core figure):
//
//	go test -bench BenchmarkViTB32Embed -run '^$' ./internal/model/
func BenchmarkViTB32Embed(b *testing.B) { benchImageEmbed(b, ViTB32Config(), fp32, []int{1, 32}) }

// BenchmarkBF16EmbedViTB32 is BenchmarkViTB32Embed on cpu,bf16 (VDPBF16PS
// where the CPU has avx512_bf16, else the AVX2 bf16 kernel), named so that
// the fp32 benchmarks' patterns do not match it.
func BenchmarkBF16EmbedViTB32(b *testing.B) { benchImageEmbed(b, ViTB32Config(), bf16, []int{1, 32}) }

// BenchmarkSigLIPBaseEmbed is BenchmarkViTB32Embed for
// google/siglip-base-patch16-224's architecture (196 tokens, the
// attention-pooling head).
func BenchmarkSigLIPBaseEmbed(b *testing.B) {
	benchImageEmbed(b, SigLIPBaseConfig(), fp32, []int{1, 8})
}

// fp32 and bf16 make the benchmarks' backends: cpu and cpu,bf16.
func fp32() backend.Backend { return cpu.New() }
func bf16() backend.Backend { return cpu.NewBF16(runtime.GOMAXPROCS(0)) }

func benchImageEmbed(b *testing.B, cfg Config, newBackend func() backend.Backend, batches []int) {
	for _, batch := range batches {
		b.Run(itoa(batch), func(b *testing.B) {
			m, err := New(cfg, newBackend(), 1)
			if err != nil {
				b.Fatal(err)
			}
			S := cfg.Vision.ImageSize
			rng := rand.New(rand.NewPCG(1, 2))
			pixels := make([]float32, batch*3*S*S)
			for i := range pixels {
				pixels[i] = float32(rng.NormFloat64())
			}
			vp := m.NewVisionPlan(batch, false)
			if _, err := m.VisionForward(vp, pixels, batch); err != nil { // warm up (and pack bf16 weights)
				b.Fatal(err)
			}
			b.ResetTimer()
			cpu0 := cputime.Process()
			for b.Loop() {
				if _, err := m.VisionForward(vp, pixels, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "images/s")
			// Throughput per CPU-second of this process: on a shared machine
			// it shows what the code does when other jobs steal cores.
			b.ReportMetric(float64(batch*b.N)/(cputime.Process()-cpu0).Seconds(), "images/cpu-s")
		})
	}
}

// BenchmarkViTB32TextEmbed is the text tower's counterpart: captions of 20
// tokens (a typical Flickr30k caption), batch 32.
func BenchmarkViTB32TextEmbed(b *testing.B) { benchText(b, fp32()) }

// BenchmarkBF16TextEmbedViTB32 is BenchmarkViTB32TextEmbed on cpu,bf16.
func BenchmarkBF16TextEmbedViTB32(b *testing.B) { benchText(b, bf16()) }

func benchText(b *testing.B, be backend.Backend) {
	cfg := ViTB32Config()
	m, err := New(cfg, be, 1)
	if err != nil {
		b.Fatal(err)
	}
	const batch, L = 32, 20
	T := cfg.Text.MaxPositionEmbeddings
	ids := make([]int32, batch*T)
	for r := range batch {
		ids[r*T] = 49406
		for i := 1; i < L-1; i++ {
			ids[r*T+i] = int32(1000 + r + i)
		}
		ids[r*T+L-1] = 49407
	}
	tp := m.NewTextPlan(batch, false)
	if _, err := m.TextForward(tp, ids, batch); err != nil { // warm up (and pack bf16 weights)
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu0 := cputime.Process()
	for b.Loop() {
		if _, err := m.TextForward(tp, ids, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "captions/s")
	b.ReportMetric(float64(batch*b.N)/(cputime.Process()-cpu0).Seconds(), "captions/cpu-s")
}

func itoa(n int) string {
	if n < 10 {
		return "batch=" + string(rune('0'+n))
	}
	return "batch=" + string(rune('0'+n/10)) + string(rune('0'+n%10))
}
