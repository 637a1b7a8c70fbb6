// Package optim holds the optimisation pieces of training, all on backend
// buffers: AdamW over the trainable parameters (backend.AdamW, PyTorch's
// update), global-norm gradient clipping (torch.nn.utils.clip_grad_norm_),
// Hugging Face's learning-rate schedules (transformers.get_scheduler) and the
// grouping of micro-batches for gradient accumulation.
//
// The package knows parameters only as Param (name, value, gradient, decay
// flag), so it does not depend on the model; the trainer passes the model's
// trainable parameters.
package optim

import (
	"fmt"
	"math"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/safetensors"
)

// Param is one trainable tensor: its value W, gradient G (same length) and
// whether weight decay applies (PyTorch/HF convention: not on biases and
// layer-norm weights).
type Param struct {
	Name  string
	W, G  backend.Buf
	Decay bool
}

// AdamW is torch.optim.AdamW with decoupled weight decay applied only to
// parameters with Decay set (Hugging Face Trainer's two parameter groups).
type AdamW struct {
	Beta1, Beta2, Eps float32
	WeightDecay       float32

	be     backend.Backend
	params []Param
	m, v   []backend.Buf
	t      int // optimizer steps taken; the next Step uses t+1
}

// NewAdamW makes an optimizer over params with betas 0.9/0.999, eps 1e-8 and
// zeroed moments.
func NewAdamW(be backend.Backend, params []Param, weightDecay float64) (*AdamW, error) {
	o := &AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: float32(weightDecay), be: be}
	seen := map[string]bool{}
	for _, p := range params {
		if p.W == nil || p.G == nil {
			return nil, fmt.Errorf("optim: parameter %s has no value or gradient buffer", p.Name)
		}
		if p.W.Len() != p.G.Len() {
			return nil, fmt.Errorf("optim: parameter %s: value has %d elements, gradient %d", p.Name, p.W.Len(), p.G.Len())
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("optim: parameter %s listed twice", p.Name)
		}
		seen[p.Name] = true
		o.params = append(o.params, p)
		o.m = append(o.m, be.Alloc(p.W.Len()))
		o.v = append(o.v, be.Alloc(p.W.Len()))
	}
	return o, nil
}

// Params are the optimised parameters.
func (o *AdamW) Params() []Param { return o.params }

// Steps is the number of optimizer steps taken.
func (o *AdamW) Steps() int { return o.t }

// Step applies one AdamW update with learning rate lr to every parameter
// (in one call where the backend updates many tensors at once).
func (o *AdamW) Step(lr float64) {
	o.t++
	if mu, ok := o.be.(backend.ManyUpdater); ok && len(o.params) > 0 {
		ws, gs := make([]backend.Buf, len(o.params)), make([]backend.Buf, len(o.params))
		decays := make([]float32, len(o.params))
		for i, p := range o.params {
			ws[i], gs[i] = p.W, p.G
			if p.Decay {
				decays[i] = o.WeightDecay
			}
		}
		mu.AdamWMany(ws, gs, o.m, o.v, decays, float32(lr), o.Beta1, o.Beta2, o.Eps, o.t)
		return
	}
	for i, p := range o.params {
		wd := float32(0)
		if p.Decay {
			wd = o.WeightDecay
		}
		o.be.AdamW(p.W, p.G, o.m[i], o.v[i], p.W.Len(), float32(lr), o.Beta1, o.Beta2, o.Eps, wd, o.t)
	}
}

// ZeroGrad zeroes every parameter's gradient.
func (o *AdamW) ZeroGrad() {
	for _, p := range o.params {
		o.be.Zero(p.G)
	}
}

// Free releases the moment buffers.
func (o *AdamW) Free() {
	for i := range o.m {
		o.be.Free(o.m[i])
		o.be.Free(o.v[i])
	}
	o.m, o.v = nil, nil
}

// State returns the moments as tensors named exp_avg.NAME and
// exp_avg_sq.NAME (PyTorch's state keys), for a trainer-state checkpoint.
func (o *AdamW) State() map[string]safetensors.Tensor {
	out := make(map[string]safetensors.Tensor, 2*len(o.params))
	for i, p := range o.params {
		n := p.W.Len()
		m := make([]float32, n)
		v := make([]float32, n)
		o.be.Download(m, o.m[i])
		o.be.Download(v, o.v[i])
		out["exp_avg."+p.Name] = safetensors.F32([]int{n}, m)
		out["exp_avg_sq."+p.Name] = safetensors.F32([]int{n}, v)
	}
	return out
}

// LoadState restores moments written by State and the step count; every
// parameter must be present with its size.
func (o *AdamW) LoadState(state map[string]safetensors.Tensor, steps int) error {
	if steps < 0 {
		return fmt.Errorf("optim: negative step count %d", steps)
	}
	for i, p := range o.params {
		for j, key := range []string{"exp_avg." + p.Name, "exp_avg_sq." + p.Name} {
			t, ok := state[key]
			if !ok {
				return fmt.Errorf("optim: optimizer state lacks %s", key)
			}
			vals, err := t.Float32()
			if err != nil {
				return fmt.Errorf("optim: optimizer state %s: %w", key, err)
			}
			if len(vals) != p.W.Len() {
				return fmt.Errorf("optim: optimizer state %s has %d values, parameter has %d", key, len(vals), p.W.Len())
			}
			dst := o.m[i]
			if j == 1 {
				dst = o.v[i]
			}
			o.be.Upload(dst, vals)
		}
	}
	o.t = steps
	return nil
}

// GradNorm returns the global L2 norm of the gradients of params.
func GradNorm(be backend.Backend, params []Param) float64 {
	if m, ok := be.(backend.SumSquaresManyer); ok && len(params) > 0 {
		// One wait for the device instead of one per tensor.
		bufs, ns := make([]backend.Buf, len(params)), make([]int, len(params))
		for i, p := range params {
			bufs[i], ns[i] = p.G, p.G.Len()
		}
		return math.Sqrt(m.SumSquaresMany(bufs, ns))
	}
	var s float64
	for _, p := range params {
		s += be.SumSquares(p.G, p.G.Len())
	}
	return math.Sqrt(s)
}

// ClipGradNorm scales the gradients so their global L2 norm is at most
// maxNorm, as torch.nn.utils.clip_grad_norm_ does (coefficient
// maxNorm/(norm+1e-6), applied only when below 1), and returns the norm
// before clipping. maxNorm <= 0 only measures. A non-finite norm is
// returned without touching the gradients, for the caller to report.
func ClipGradNorm(be backend.Backend, params []Param, maxNorm float64) float64 {
	norm := GradNorm(be, params)
	if maxNorm <= 0 || math.IsNaN(norm) || math.IsInf(norm, 0) {
		return norm
	}
	coef := maxNorm / (norm + 1e-6)
	if mu, ok := be.(backend.ManyUpdater); ok && coef < 1 {
		gs := make([]backend.Buf, len(params))
		for i, p := range params {
			gs[i] = p.G
		}
		mu.ScaleMany(gs, float32(coef))
		return norm
	}
	if coef < 1 {
		for _, p := range params {
			be.Scale(p.G, float32(coef), p.G.Len())
		}
	}
	return norm
}

// Groups splits numBatches micro-batches into optimizer steps of accum
// micro-batches each; the last group holds the remainder, so every batch of
// an epoch contributes (Hugging Face drops nothing either: it steps at the
// end of the epoch).
func Groups(numBatches, accum int) []int {
	if accum < 1 {
		accum = 1
	}
	var g []int
	for left := numBatches; left > 0; left -= accum {
		g = append(g, min(accum, left))
	}
	return g
}
