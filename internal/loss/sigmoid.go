package loss

import (
	"errors"
	"math"
)

// SigLIP's initial values of logit_scale and logit_bias (Zhai et al. 2023,
// "Sigmoid Loss for Language Image Pre-Training": t' = log 10, b = -10),
// for a model made from scratch or a checkpoint without them.
var (
	SigmoidInitLogitScale = float32(math.Log(10))
	SigmoidInitLogitBias  = float32(-10)
)

// Sigmoid computes SigLIP's pairwise sigmoid loss of n (image, text) pairs
// (img, txt: raw embeddings [n, D], row i of each forming pair i). For each
// prefix length d (Matryoshka; just D by default), with u, v the unit
// prefixes as in InfoNCE:
//
//	z_ij = s · u_i·v_j + b
//	loss_d = -(1/n) Σ_ij log σ(l_ij · z_ij)
//
// with l_ij = +1 for a matching pair and -1 otherwise, s = exp(LogitScale)
// (or 1/Temperature: then DLogitScale is 0) and b = LogitBias; the loss is
// Σ_d loss_d. This is transformers' SiglipModel loss (and big_vision's):
// every (image, text) entry is its own binary problem, so unlike InfoNCE
// the loss is one sum, not two directions. log σ is computed stably
// (-softplus(-x)), so logits of any size stay finite.
//
// Options: ImageIDs makes pairs i ≠ j that show the same image matches
// (l_ij = +1): text j does describe image i, so it is a positive, not a
// left-out entry as in InfoNCE — the sigmoid loss has no softmax to leave
// it out of, and calling it a negative would teach the model that a
// correct caption does not match. Dims sum over prefixes as in InfoNCE,
// with the same s and b for each. MaxScale does not apply (SigLIP clamps
// nothing; a MaxScale is an error). DLogitBias is always set: whether
// logit_bias trains is the model's business.
func Sigmoid(img, txt []float32, n, D int, o Options) (Result, error) {
	dims, err := check(img, txt, n, D, o)
	if err != nil {
		return Result{}, err
	}
	if o.MaxScale != 0 {
		return Result{}, errors.New("loss: the sigmoid loss has no MaxScale clamp")
	}
	s, learn, err := multiplier(o, math.Inf(1))
	if err != nil {
		return Result{}, err
	}
	b := float64(o.LogitBias)
	if math.IsNaN(b) || math.IsInf(b, 0) {
		return Result{}, errors.New("loss: logit_bias is not finite")
	}
	match := func(i, j int) bool {
		return i == j || (o.ImageIDs != nil && o.ImageIDs[i] == o.ImageIDs[j])
	}

	g := newGrads(n, D, s)
	inv := 1 / float64(n)
	for _, d := range dims {
		p := newPrefix(img, txt, n, D, d)
		dL := make([]float64, n*n)
		var ld float64
		for i := range n {
			for j := range n {
				l := -1.0
				if match(i, j) {
					l = 1
				}
				x := l * (s*p.cos[i*n+j] + b)
				ld -= logSigmoid(x)
				// d(-log σ(x))/dz = -l σ(-x)
				dL[i*n+j] = -l * sigmoid(-x) * inv
			}
		}
		g.add(ld*inv, p, dL)
	}
	return g.result(learn, true)
}

// logSigmoid is log σ(x) = -log(1 + e^-x) without overflow for large |x|.
func logSigmoid(x float64) float64 {
	return math.Min(x, 0) - math.Log1p(math.Exp(-math.Abs(x)))
}

// sigmoid is σ(x), exact for large |x| of either sign.
func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}
