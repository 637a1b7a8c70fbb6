package imageproc

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"

	"github.com/clipline/clipline/internal/cputime"
	"github.com/clipline/clipline/internal/sharedtest"
)

// benchJPEG is the JPEG named by $CLIPLINE_BENCH_JPEG (scripts/bench/jpeg_compare.sh
// sets it), else a 500x375 one: the shared landscape photo when present,
// otherwise a synthetic one (quality 90, 4:2:0) so the benchmark always runs.
func benchJPEG(b testing.TB) []byte {
	if p := os.Getenv("CLIPLINE_BENCH_JPEG"); p != "" {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		return data
	}
	p := filepath.Join(sharedtest.Root(), "golden", "preprocess", "landscape_500x375.jpg")
	if data, err := os.ReadFile(p); err == nil {
		return data
	}
	m := image.NewRGBA(image.Rect(0, 0, 500, 375))
	for y := 0; y < 375; y++ {
		for x := 0; x < 500; x++ {
			m.SetRGBA(x, y, color.RGBA{uint8(x ^ y), uint8(x * y >> 5), uint8(3*x + y), 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkDecode224 is decode's per-image work on a 500x375 JPEG (decode,
// RGB, resize, crop to 224), on all GOMAXPROCS cores with one Processor per
// goroutine as the stage uses them. images/s is the throughput;
// cpu-ms/image the processor time each image costs.
func BenchmarkDecode224(b *testing.B) {
	data := benchJPEG(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	cpu0 := cputime.Process()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		p, _ := NewProcessor(Square(224))
		var dst []byte
		for pb.Next() {
			var err error
			if dst, err = p.Bytes(dst, data, "bench.jpg"); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
	// CPU time per image: the throughput on k otherwise idle cores is about
	// k*1000/cpu-ms/image, whatever else was running during the benchmark.
	if cpu0 > 0 {
		b.ReportMetric((cputime.Process()-cpu0).Seconds()*1000/float64(b.N), "cpu-ms/image")
	}
}

// BenchmarkStages splits one image's cost on one core.
func BenchmarkStages(b *testing.B) {
	data := benchJPEG(b)
	b.Run("jpeg.Decode", func(b *testing.B) {
		for b.Loop() {
			if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
	})
	m, _ := jpeg.Decode(bytes.NewReader(data))
	b.Run("toRGB", func(b *testing.B) {
		for b.Loop() {
			FromImage(m, "jpeg")
		}
	})
	img := FromImage(m, "jpeg")
	p, _ := NewProcessor(Square(224))
	dst := p.Apply(nil, img)
	b.Run("resize+crop", func(b *testing.B) {
		for b.Loop() {
			p.Apply(dst, img)
		}
	})
}
