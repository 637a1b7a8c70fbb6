package synthetic

import "testing"

// BenchmarkGenerate renders and writes 300 images (mixed PNG/JPEG, 160-320
// px) and reports images/s across all cores.
func BenchmarkGenerate(b *testing.B) {
	for _, d := range []Domain{General, Scenes} {
		b.Run(string(d), func(b *testing.B) {
			const n = 300
			for b.Loop() {
				c := Defaults()
				c.Images, c.Domain = n, d
				c.ImageDir = b.TempDir()
				if _, _, err := Generate(c); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
