// Package loss computes the contrastive losses of dual encoders on the
// host, with their gradients: CLIP's symmetric InfoNCE and SigLIP's
// pairwise sigmoid loss (Sigmoid, sigmoid.go). The trainer downloads the
// two [n, D] embedding matrices (raw projections), calls the loss, uploads
// DImg and DTxt for the towers' backward passes and adds DLogitScale (and
// DLogitBias) to the logit_scale (and logit_bias) gradient.
//
// InfoNCE, for each prefix length d (Matryoshka; just D by default):
//
//	u_i = img_i[:d] / |img_i[:d]|,  v_j = txt_j[:d] / |txt_j[:d]|
//	L_ij = s · u_i·v_j
//	loss_d = ( mean_i CE(row i of L, target i) + mean_j CE(column j of L, target j) ) / 2
//
// and the loss is Σ_d loss_d. The multiplier s is exp(logit_scale) clamped
// at MaxScale (100, as CLIP), or 1/Temperature when Temperature > 0 (then
// DLogitScale is 0).
//
// Positive mask (ImageIDs given): pairs i ≠ j with ImageIDs[i] == ImageIDs[j]
// show the same image, so neither is a negative of the other: L_ij and L_ji
// are left out of the softmax denominators of row i, row j, column i and
// column j (an entry (i,j) is excluded from both its row's and its column's
// softmax). The diagonal — each pair's own target — is always kept. Without
// ImageIDs every off-diagonal entry is a negative (plain CLIP loss).
package loss

import (
	"fmt"
	"math"
)

// DefaultMaxScale is CLIP's clamp on exp(logit_scale).
const DefaultMaxScale = 100

// Options selects the multiplier, the positive mask and the prefixes.
type Options struct {
	// LogitScale is the model's logit_scale parameter (the log of the
	// multiplier); used when Temperature is 0.
	LogitScale float32
	// LogitBias is the model's logit_bias, added to every logit by the
	// sigmoid loss (InfoNCE has no use for it).
	LogitBias float32
	// Temperature > 0 fixes the multiplier at 1/Temperature (no gradient).
	Temperature float32
	// MaxScale clamps exp(LogitScale) in InfoNCE; 0 means DefaultMaxScale.
	// Above the clamp the logit_scale gradient is 0 (as torch.clamp's). The
	// sigmoid loss has no clamp and refuses a MaxScale.
	MaxScale float32
	// ImageIDs, when non-nil, holds one image id per pair (length n); pairs
	// sharing an image are not negatives of each other (see package doc).
	ImageIDs []int64
	// Dims are the Matryoshka prefix lengths (each <= D); empty means [D].
	Dims []int
}

// Result is the loss and its gradients.
type Result struct {
	Loss        float32   // Σ over Dims of the symmetric loss
	PerDim      []float32 // the symmetric loss for each of Dims
	DImg, DTxt  []float32 // dLoss/d(image embeddings), dLoss/d(text embeddings), [n, D]
	DLogitScale float32   // dLoss/d(logit_scale); 0 with a fixed temperature or above the clamp
	DLogitBias  float32   // dLoss/d(logit_bias); sigmoid loss only (0 for InfoNCE)
	Scale       float32   // the multiplier s used

	loss64 float64 // Loss before rounding (finite-difference tests)
}

// InfoNCE computes the loss of n (image, text) pairs: img and txt are the
// raw (unnormalised) embeddings [n, D], row i of each forming pair i.
// LogitBias is not used: a constant added to every logit leaves a softmax
// unchanged.
func InfoNCE(img, txt []float32, n, D int, o Options) (Result, error) {
	dims, err := check(img, txt, n, D, o)
	if err != nil {
		return Result{}, err
	}
	maxScale := float64(o.MaxScale)
	if maxScale == 0 {
		maxScale = DefaultMaxScale
	}
	s, learn, err := multiplier(o, maxScale)
	if err != nil {
		return Result{}, err
	}
	excluded := func(i, j int) bool {
		return i != j && o.ImageIDs != nil && o.ImageIDs[i] == o.ImageIDs[j]
	}

	g := newGrads(n, D, s)
	for _, d := range dims {
		p := newPrefix(img, txt, n, D, d)
		cos := p.cos
		// dL[i,j] = dloss_d / dlogit[i,j]
		dL := make([]float64, n*n)
		// crossEntropy is one direction's loss summed over its n queries, its
		// gradient added to dL; at(q, c) is the index in cos and dL of query
		// q's logit against candidate c. (excluded is symmetric, so it takes
		// query and candidate in either direction.)
		crossEntropy := func(at func(q, c int) int) float64 {
			var loss float64
			for q := range n {
				mx := math.Inf(-1)
				for c := range n {
					if !excluded(q, c) {
						mx = math.Max(mx, s*cos[at(q, c)])
					}
				}
				var z float64
				for c := range n {
					if !excluded(q, c) {
						z += math.Exp(s*cos[at(q, c)] - mx)
					}
				}
				loss += mx + math.Log(z) - s*cos[at(q, q)]
				for c := range n {
					if !excluded(q, c) {
						dL[at(q, c)] += math.Exp(s*cos[at(q, c)]-mx) / z / (2 * float64(n))
					}
				}
				dL[at(q, q)] -= 1 / (2 * float64(n))
			}
			return loss
		}
		lossR := crossEntropy(func(i, j int) int { return i*n + j }) // image i against every text
		lossC := crossEntropy(func(j, i int) int { return i*n + j }) // text j against every image
		g.add((lossR+lossC)/(2*float64(n)), p, dL)
	}
	return g.result(learn, false)
}

// check validates the shapes and options shared by the losses and returns
// the prefix lengths.
func check(img, txt []float32, n, D int, o Options) ([]int, error) {
	if n <= 0 || D <= 0 {
		return nil, fmt.Errorf("loss: n = %d, D = %d must be positive", n, D)
	}
	if len(img) != n*D || len(txt) != n*D {
		return nil, fmt.Errorf("loss: embeddings have %d and %d values, want %d ([%d, %d])", len(img), len(txt), n*D, n, D)
	}
	if o.ImageIDs != nil && len(o.ImageIDs) != n {
		return nil, fmt.Errorf("loss: %d image ids for %d pairs", len(o.ImageIDs), n)
	}
	dims := o.Dims
	if len(dims) == 0 {
		dims = []int{D}
	}
	for _, d := range dims {
		if d <= 0 || d > D {
			return nil, fmt.Errorf("loss: Matryoshka dimension %d outside [1, %d]", d, D)
		}
	}
	return dims, nil
}

// multiplier is the logit multiplier s: 1/Temperature, or exp(LogitScale)
// clamped at maxScale; learn says whether logit_scale gets a gradient.
func multiplier(o Options, maxScale float64) (s float64, learn bool, err error) {
	switch {
	case o.Temperature > 0:
		s = 1 / float64(o.Temperature)
	case o.Temperature < 0:
		return 0, false, fmt.Errorf("loss: temperature %v must be positive", o.Temperature)
	default:
		s = math.Exp(float64(o.LogitScale))
		learn = true
		if s > maxScale {
			s, learn = maxScale, false
		}
	}
	if math.IsNaN(s) || math.IsInf(s, 0) {
		return 0, false, fmt.Errorf("loss: logit multiplier %v is not finite", s)
	}
	return s, learn, nil
}

// prefix holds one Matryoshka prefix of both sides: unit rows u (images)
// and v (texts) [n, d], their norms, and the cosines cos[i*n+j] = u_i·v_j.
type prefix struct {
	d            int
	u, un, v, vn []float64
	cos          []float64
}

func newPrefix(img, txt []float32, n, D, d int) *prefix {
	p := &prefix{d: d, cos: make([]float64, n*n)}
	p.u, p.un = normalise(img, n, D, d)
	p.v, p.vn = normalise(txt, n, D, d)
	for i := range n {
		for j := range n {
			var dot float64
			for k := range d {
				dot += p.u[i*d+k] * p.v[j*d+k]
			}
			p.cos[i*n+j] = dot
		}
	}
	return p
}

// grads accumulates the loss and gradients over the prefixes, in float64.
type grads struct {
	n, D              int
	s                 float64
	res               Result
	dImg, dTxt        []float64
	total, dScale, dB float64
}

func newGrads(n, D int, s float64) *grads {
	return &grads{n: n, D: D, s: s, dImg: make([]float64, n*D), dTxt: make([]float64, n*D),
		res: Result{DImg: make([]float32, n*D), DTxt: make([]float32, n*D), Scale: float32(s)}}
}

// add records prefix p's loss ld and backpropagates dL[i*n+j], the
// gradient wrt the logit s·cos[i,j] (+ b), to the raw embeddings, the
// multiplier and the bias.
func (g *grads) add(ld float64, p *prefix, dL []float64) {
	n, d := g.n, p.d
	g.res.PerDim = append(g.res.PerDim, float32(ld))
	g.total += ld
	du, dv := make([]float64, n*d), make([]float64, n*d)
	for i := range n {
		for j := range n {
			gij := dL[i*n+j]
			if gij == 0 {
				continue
			}
			g.dScale += gij * p.cos[i*n+j]
			g.dB += gij
			gij *= g.s
			for k := range d {
				du[i*d+k] += gij * p.v[j*d+k]
				dv[j*d+k] += gij * p.u[i*d+k]
			}
		}
	}
	unnormalise(g.dImg, du, p.u, p.un, n, g.D, d)
	unnormalise(g.dTxt, dv, p.v, p.vn, n, g.D, d)
}

// result rounds the sums to the Result; learnScale and learnBias say which
// of DLogitScale and DLogitBias are set.
func (g *grads) result(learnScale, learnBias bool) (Result, error) {
	res := g.res
	res.Loss, res.loss64 = float32(g.total), g.total
	for i := range g.dImg {
		res.DImg[i], res.DTxt[i] = float32(g.dImg[i]), float32(g.dTxt[i])
	}
	if learnScale {
		res.DLogitScale = float32(g.dScale * g.s) // ds/dlogit_scale = s
	}
	if learnBias {
		res.DLogitBias = float32(g.dB)
	}
	if math.IsNaN(g.total) || math.IsInf(g.total, 0) {
		return res, fmt.Errorf("loss: not finite (%v)", g.total)
	}
	return res, nil
}

// normEps keeps an all-zero row finite (as torch.nn.functional.normalize).
const normEps = 1e-12

// normalise returns the unit prefixes [n, d] of x [n, D] and their norms.
func normalise(x []float32, n, D, d int) ([]float64, []float64) {
	u, norms := make([]float64, n*d), make([]float64, n)
	for i := range n {
		var ss float64
		for k := range d {
			f := float64(x[i*D+k])
			ss += f * f
		}
		nr := math.Max(math.Sqrt(ss), normEps)
		norms[i] = nr
		for k := range d {
			u[i*d+k] = float64(x[i*D+k]) / nr
		}
	}
	return u, norms
}

// unnormalise accumulates into dx [n, D] the gradient through u = x/|x|:
// dx = (du - u (u·du)) / |x| on the first d columns.
func unnormalise(dx, du, u, norms []float64, n, D, d int) {
	for i := range n {
		var dot float64
		for k := range d {
			dot += u[i*d+k] * du[i*d+k]
		}
		for k := range d {
			dx[i*D+k] += (du[i*d+k] - u[i*d+k]*dot) / norms[i]
		}
	}
}
