package train

import (
	"math"
	"testing"

	"github.com/clipline/clipline/internal/loss"
)

// GradCache's gradients equal the plain batch's: embeddings of the whole
// batch in chunks, the loss over all of them, then each chunk recomputed
// and backpropagated with its slice of the embedding gradient.
func TestGradCacheEqualsPlainBatch(t *testing.T) {
	base := tinyModelDir(t)
	data := synthData(3, 6, 2) // 12 pairs, two per image
	// A batch with pairs of one image together (positive mask in play).
	batch := []int32{0, 1, 5, 2, 9, 4, 11, 7, 3}
	for _, tc := range []struct {
		name  string
		lora  bool
		learn bool
		mrl   bool
	}{
		{"full", false, true, false},
		{"lora", true, false, false},
		{"full-mrl", false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			grads := map[int]map[string][]float32{}
			losses := map[int]float64{}
			for _, chunk := range []int{0, 4, 1} {
				c := testConfig(base, t.TempDir())
				c.BatchSize = len(batch)
				c.UseLoRA = tc.lora
				c.LoRADropout = 0
				c.LearnTemperature = tc.learn
				if tc.mrl {
					c.UseMRL, c.MRLDims = true, []int{32, 8}
				}
				if chunk > 0 {
					c.UseGradientCache, c.GradientCacheChunkSize = true, chunk
				}
				tr := newTrainer(t, c, base, data, nil, "", nil)
				if tc.lora {
					perturbLoRA(t, tr)
				}
				tr.m.ZeroGrads()
				l, err := tr.microBatch(batch, nil, 1, 42)
				if err != nil {
					t.Fatal(err)
				}
				losses[chunk] = l
				grads[chunk] = hostGrads(tr)
			}
			for _, chunk := range []int{4, 1} {
				if !(math.Abs(losses[chunk]-losses[0]) <= 1e-5*math.Abs(losses[0])) {
					t.Errorf("chunk %d: loss %v, plain %v", chunk, losses[chunk], losses[0])
				}
				compareGrads(t, grads[0], grads[chunk], 1e-4)
			}
			if len(grads[0]) == 0 {
				t.Fatal("no gradients")
			}
		})
	}
}

// perturbLoRA gives every adapter B non-zero values so gradients reach A.
func perturbLoRA(t *testing.T, tr *Trainer) {
	for _, p := range tr.Params() {
		v := make([]float32, p.W.Len())
		tr.be.Download(v, p.W)
		for i := range v {
			v[i] += 0.01 * float32(math.Sin(float64(i)+1))
		}
		tr.be.Upload(p.W, v)
	}
}

// compareGrads checks each tensor within rel of its largest magnitude, or
// of 1e-3 of the largest gradient overall for tensors whose gradient is
// zero in exact arithmetic (k_proj biases: softmax ignores a constant shift)
// and only rounding noise in float32.
func compareGrads(t *testing.T, want, got map[string][]float32, rel float64) {
	t.Helper()
	var global float64
	for _, w := range want {
		for _, v := range w {
			global = math.Max(global, math.Abs(float64(v)))
		}
	}
	nonzero := 0
	for name, w := range want {
		g, ok := got[name]
		if !ok || len(g) != len(w) {
			t.Errorf("%s: missing or resized", name)
			continue
		}
		var scale, worst float64
		for i := range w {
			scale = math.Max(scale, math.Abs(float64(w[i])))
			worst = math.Max(worst, math.Abs(float64(w[i])-float64(g[i])))
		}
		if scale > 0 {
			nonzero++
		}
		if !(worst <= rel*math.Max(scale, 1e-3*global)) {
			t.Errorf("%s: max difference %.3g, scale %.3g", name, worst, scale)
		}
	}
	if nonzero == 0 {
		t.Error("all gradients are zero")
	}
}

// Matryoshka: the trainer's loss is the sum of the per-prefix losses
// (weighted by mrl_weights when given), and so are its gradients.
func TestMatryoshkaLoss(t *testing.T) {
	base := tinyModelDir(t)
	data := synthData(5, 4, 2)
	c := testConfig(base, t.TempDir())
	c.UseMRL, c.MRLDims = true, []int{32, 16, 4}
	tr := newTrainer(t, c, base, data, nil, "", nil)
	batch := []int32{0, 1, 2, 3, 4, 5, 6, 7}
	n, D := len(batch), tr.D
	img, txt, err := tr.ts.Forward(tr.batch(data, batch, nil, 1))
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, n)
	for i, p := range batch {
		ids[i] = int64(data.PairImage[p])
	}
	for _, weights := range [][]float64{nil, {1, 0.5, 2}} {
		tr.cfg.MRLWeights = weights
		got, err := tr.loss(img, txt, n, ids)
		if err != nil {
			t.Fatal(err)
		}
		var want float64
		dImg := make([]float64, n*D)
		for k, d := range c.MRLDims {
			r, err := loss.InfoNCE(img, txt, n, D, loss.Options{ImageIDs: ids, Temperature: float32(c.Temperature), Dims: []int{d}})
			if err != nil {
				t.Fatal(err)
			}
			w := 1.0
			if weights != nil {
				w = weights[k]
			}
			want += w * float64(r.Loss)
			for i := range r.DImg {
				dImg[i] += w * float64(r.DImg[i])
			}
		}
		if !(math.Abs(float64(got.Loss)-want) <= 1e-5*want) {
			t.Errorf("weights %v: loss %v, want Σ prefixes %v", weights, got.Loss, want)
		}
		for i := range dImg {
			if !(math.Abs(float64(got.DImg[i])-dImg[i]) <= 1e-6) {
				t.Fatalf("weights %v: dImg[%d] %v, want %v", weights, i, got.DImg[i], dImg[i])
			}
		}
		// Dimensions beyond the largest prefix get no gradient... unless
		// the full width is a prefix (it is here, 32 = D).
	}
	// A prefix wider than the projection is a config error.
	c.MRLDims = []int{64}
	if _, err := New(Options{Config: c, ModelDir: base, Backend: testBackend(), Train: data}); err == nil {
		t.Error("mrl_dims above projection_dim accepted")
	}
}

// Gradient accumulation: a step over two micro-batches accumulates the mean
// of their gradients (each scaled by 1/2), as Hugging Face's loss / steps.
func TestAccumulationAveragesMicroBatches(t *testing.T) {
	base := tinyModelDir(t)
	data := synthData(3, 6, 2)
	c := testConfig(base, t.TempDir())
	c.UseLoRA = false
	c.BatchSize = 6
	tr := newTrainer(t, c, base, data, nil, "", nil)
	b1, b2 := []int32{0, 3, 5, 7, 8, 11}, []int32{1, 2, 4, 6, 9, 10}
	single := func(b []int32) map[string][]float32 {
		tr.m.ZeroGrads()
		if _, err := tr.microBatch(b, nil, 1, 9); err != nil {
			t.Fatal(err)
		}
		return hostGrads(tr)
	}
	g1, g2 := single(b1), single(b2)
	tr.m.ZeroGrads()
	for _, b := range [][]int32{b1, b2} {
		if _, err := tr.microBatch(b, nil, 0.5, 9); err != nil {
			t.Fatal(err)
		}
	}
	got := hostGrads(tr)
	want := map[string][]float32{}
	for k := range g1 {
		want[k] = make([]float32, len(g1[k]))
		for i := range g1[k] {
			want[k][i] = 0.5 * (g1[k][i] + g2[k][i])
		}
	}
	compareGrads(t, want, got, 1e-5)
}
