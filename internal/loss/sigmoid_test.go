package loss

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// refCase is one case of testdata/sigmoid_ref.json (sigmoid_ref.py:
// PyTorch autograd on transformers' SigLIP loss, float64).
type refCase struct {
	Name        string
	N, D        int
	LogitScale  float32 `json:"logit_scale"`
	LogitBias   float32 `json:"logit_bias"`
	Temperature float32
	ImageIDs    []int64 `json:"image_ids"`
	Dims        []int
	Img, Txt    []float32
	Loss        float64
	DImg        []float64 `json:"d_img"`
	DTxt        []float64 `json:"d_txt"`
	DLogitScale float64   `json:"d_logit_scale"`
	DLogitBias  float64   `json:"d_logit_bias"`
}

func TestSigmoidReference(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "sigmoid_ref.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct{ Cases []refCase }
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Cases) < 8 {
		t.Fatalf("%d reference cases, want 8", len(ref.Cases))
	}
	for _, c := range ref.Cases {
		t.Run(c.Name, func(t *testing.T) {
			o := Options{LogitScale: c.LogitScale, LogitBias: c.LogitBias, Temperature: c.Temperature, ImageIDs: c.ImageIDs, Dims: c.Dims}
			r, err := Sigmoid(c.Img, c.Txt, c.N, c.D, o)
			if err != nil {
				t.Fatal(err)
			}
			// float32 results of a float64 computation: relative 1e-6
			// plus a floor for gradients near 0.
			near := func(what string, got float32, want float64) {
				t.Helper()
				if !(math.Abs(float64(got)-want) <= 1e-6*math.Abs(want)+1e-7) {
					t.Errorf("%s: %.8g, PyTorch %.8g", what, got, want)
				}
			}
			near("loss", r.Loss, c.Loss)
			if !(math.Abs(r.loss64-c.Loss) <= 1e-12*math.Abs(c.Loss)+1e-13) {
				t.Errorf("float64 loss %.17g, PyTorch %.17g", r.loss64, c.Loss)
			}
			near("dLogitScale", r.DLogitScale, c.DLogitScale)
			near("dLogitBias", r.DLogitBias, c.DLogitBias)
			for i := range c.DImg {
				near("dImg", r.DImg[i], c.DImg[i])
				near("dTxt", r.DTxt[i], c.DTxt[i])
			}
			t.Logf("loss %.7g (PyTorch %.7g), dScale %.5g, dBias %.5g", r.Loss, c.Loss, r.DLogitScale, r.DLogitBias)
		})
	}
}

func TestSigmoidHandCases(t *testing.T) {
	// Two pairs, unit vectors matching on the diagonal and orthogonal
	// across, s = 2, b = -1: logits [[1, -1], [-1, 1]], every entry's
	// label-signed logit is +1, so loss = (1/2)·4·log(1+e^-1).
	img := []float32{1, 0, 0, 2}
	txt := []float32{3, 0, 0, 1}
	r, err := Sigmoid(img, txt, 2, 2, Options{Temperature: 0.5, LogitBias: -1})
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * math.Log1p(math.Exp(-1)); !(math.Abs(r.loss64-want) <= 1e-12) || r.DLogitScale != 0 {
		t.Errorf("2x2: loss %v dScale %v, want %v and 0", r.loss64, r.DLogitScale, want)
	}
	// dBias = (1/n) Σ -l σ(-l z) = (1/2)(2·(-σ(-1)) + 2·σ(-1)) = 0 by symmetry.
	if !(math.Abs(float64(r.DLogitBias)) <= 1e-7) {
		t.Errorf("2x2: dBias %v, want 0", r.DLogitBias)
	}

	// Huge logits: s = e^12 ≈ 163000. A wrong-signed entry costs its logit,
	// a right-signed one nothing; nothing overflows.
	r, err = Sigmoid(img, []float32{-1, 0, 0, 1}, 2, 2, Options{LogitScale: 12, LogitBias: 0})
	if err != nil {
		t.Fatal(err)
	}
	s := math.Exp(12)
	// logits [[-s, 0], [0, s]]: pair 0's diagonal is -s (loss s), the
	// off-diagonals 0 (log 2 each), pair 1's diagonal +s (loss 0).
	if want := (s + 2*math.Log(2)) / 2; !(math.Abs(r.loss64-want) <= 1e-9*want) {
		t.Errorf("huge logits: loss %v, want %v", r.loss64, want)
	}
	for _, g := range append(append([]float32{r.DLogitScale, r.DLogitBias}, r.DImg...), r.DTxt...) {
		if math.IsNaN(float64(g)) || math.IsInf(float64(g), 0) {
			t.Fatalf("huge logits: gradient %v", g)
		}
	}

	// One pair: -log σ(s cos + b); SigLIP's initial values on identical
	// embeddings give -log σ(10 - 10) = log 2.
	x := []float32{0.3, -0.4, 1.2}
	r, err = Sigmoid(x, x, 1, 3, Options{LogitScale: SigmoidInitLogitScale, LogitBias: SigmoidInitLogitBias})
	if err != nil {
		t.Fatal(err)
	}
	if !(math.Abs(r.loss64-math.Ln2) <= 1e-6) {
		t.Errorf("one pair at init: loss %v, want log 2", r.loss64)
	}
	// dBias = -σ(0) = -1/2; dScale = -σ(0)·s·cos = -5.
	if !(math.Abs(float64(r.DLogitBias)+0.5) <= 1e-6) || !(math.Abs(float64(r.DLogitScale)+5) <= 1e-5) {
		t.Errorf("one pair at init: dBias %v dScale %v, want -0.5 and -5", r.DLogitBias, r.DLogitScale)
	}

	// The positive mask turns the label of same-image pairs to +1: three
	// pairs of one image and identical embeddings (cos 1, s = 1, b = 0)
	// make 9 entries of -log σ(1) each, divided by n = 3: three times the
	// one-pair loss.
	r, _ = Sigmoid(x, x, 1, 3, Options{LogitScale: 0})
	one := r.loss64
	xs := append(append(append([]float32{}, x...), x...), x...)
	r, _ = Sigmoid(xs, xs, 3, 3, Options{LogitScale: 0, ImageIDs: []int64{4, 4, 4}})
	if !(math.Abs(r.loss64-3*one) <= 1e-12) {
		t.Errorf("all positives: loss %v, want 3 × %v", r.loss64, one)
	}
	// Without the mask the off-diagonal entries are negatives: larger.
	r2, _ := Sigmoid(xs, xs, 3, 3, Options{LogitScale: 0})
	if !(r2.loss64 > r.loss64+1) {
		t.Errorf("no mask: loss %v, want well above the masked %v", r2.loss64, r.loss64)
	}

	// Matryoshka: the sum of each prefix's own loss.
	rng := rand.New(rand.NewPCG(7, 8))
	a, b := randn(rng, 24), randn(rng, 24)
	o := Options{LogitScale: 1, LogitBias: -2}
	pre := func(x []float32, d int) []float32 {
		var out []float32
		for i := range 3 {
			out = append(out, x[i*8:i*8+d]...)
		}
		return out
	}
	o.Dims = []int{8, 4}
	rm, _ := Sigmoid(a, b, 3, 8, o)
	o.Dims = nil
	r4, _ := Sigmoid(pre(a, 4), pre(b, 4), 3, 4, o)
	r8, _ := Sigmoid(a, b, 3, 8, o)
	if !(math.Abs(rm.loss64-(r4.loss64+r8.loss64)) <= 1e-12) || len(rm.PerDim) != 2 {
		t.Errorf("matryoshka: %v != %v + %v", rm.loss64, r4.loss64, r8.loss64)
	}
	if !(math.Abs(float64(rm.DLogitBias-(r4.DLogitBias+r8.DLogitBias))) <= 1e-6) {
		t.Errorf("matryoshka dBias: %v != %v + %v", rm.DLogitBias, r4.DLogitBias, r8.DLogitBias)
	}
}

func TestSigmoidErrors(t *testing.T) {
	x := make([]float32, 8)
	for _, o := range []Options{{Dims: []int{5}}, {ImageIDs: []int64{1}}, {Temperature: -1}, {MaxScale: 100},
		{LogitBias: float32(math.NaN())}, {LogitScale: 1000}} {
		if _, err := Sigmoid(x, x, 2, 4, o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	if _, err := Sigmoid(x, x[:4], 2, 4, Options{}); err == nil {
		t.Error("short txt: no error")
	}
}
