package model

import (
	"fmt"

	"github.com/clipline/clipline/internal/backend"
)

// layerActs are one transformer block's saved activations: what its
// backward pass needs and cannot cheaply recompute. The layer norms' and
// The activation's outputs are recomputed in the workspace from the saved
// inputs and statistics (an elementwise pass each) instead of being kept
// for every layer, which saves 6 of 16 [M, C]-sized buffers per layer.
type layerActs struct {
	mean1, rstd1      backend.Buf
	q, k, v, att, scr backend.Buf
	x2                backend.Buf // residual after attention (training only; aliases x in inference)
	mean2, rstd2      backend.Buf
	h1                backend.Buf             // fc1's output, the activation's input (nil: recomputed or packed)
	h1p               backend.Buf             // h1 as packed bf16 (bf16 backends), or nil
	hs                map[*linear]backend.Buf // LoRA hidden (scaled) per adapted linear
}

// plan is the part of a memory plan common to both towers.
type plan struct {
	m        *Model
	tw       *tower
	B, T     int // planned batch and (maximum) sequence length
	training bool
	causal   bool
	// recomputeMLP: the backward recomputes fc1's output (Model.RecomputeMLP).
	// packMLP: it keeps that output as packed bf16, on a backend that
	// computes in bf16 (backend.BF16Activations) and rounds it anyway.
	recomputeMLP, packMLP bool
	gen                   int
	bufs                  []backend.Buf
	ibufs                 []backend.IntBuf

	xs   []backend.Buf // residual stream: L+1 buffers (training) or 1 (inference)
	acts []layerActs   // L (training) or 1 shared (inference)

	pooled, pmean, prstd, post, out backend.Buf
	projHs                          backend.Buf
	idx                             backend.IntBuf // rows pooled from the last residual buffer

	loraMaxIn, loraR int // widest adapted input, adapter rank (0: no LoRA)

	n, t    int // rows and sequence length of the last forward (0: none yet)
	dropout bool
	seed    uint64
}

func (p *plan) alloc(n int) backend.Buf {
	b := p.m.be.Alloc(max(n, 1))
	p.bufs = append(p.bufs, b)
	return b
}

// work returns the first n values of the model's workspace buffer id.
func (p *plan) work(id workID, n int) backend.Buf { return p.m.workBuf(id, n) }

func (p *plan) init(m *Model, tw *tower, B, T int, training, causal bool) {
	if B <= 0 {
		panic(fmt.Sprintf("model: plan batch size %d must be positive", B))
	}
	*p = plan{m: m, tw: tw, B: B, T: T, training: training, causal: causal, gen: m.gen,
		recomputeMLP: training && m.recomputeMLP}
	p.packMLP = training && !p.recomputeMLP && bf16Activations(m.be)
	be := m.be
	M, C, I := B*T, tw.C, tw.I
	nl := 1
	if training {
		nl = tw.L
	}
	p.xs = make([]backend.Buf, 0, tw.L+1)
	p.xs = append(p.xs, p.alloc(M*C))
	if training {
		for range tw.L {
			p.xs = append(p.xs, p.alloc(M*C))
		}
	}
	for _, b := range tw.blocks {
		for _, l := range b.linears() {
			if l.lora != nil {
				p.loraMaxIn, p.loraR = max(p.loraMaxIn, l.in), l.lora.r
			}
		}
	}
	if l := tw.proj; l != nil && l.lora != nil {
		p.loraMaxIn, p.loraR = max(p.loraMaxIn, l.in), l.lora.r
	}
	scr := be.AttentionScratchLen(B, T, tw.NH)
	p.acts = make([]layerActs, nl)
	for i := range p.acts {
		a := &p.acts[i]
		a.mean1, a.rstd1 = p.alloc(M), p.alloc(M)
		a.q, a.k, a.v, a.att, a.scr = p.alloc(M*C), p.alloc(M*C), p.alloc(M*C), p.alloc(M*C), p.alloc(scr)
		a.x2 = p.xs[0] // inference: the residual is updated in place
		if training {
			a.x2 = p.alloc(M * C)
		}
		a.mean2, a.rstd2 = p.alloc(M), p.alloc(M)
		switch {
		case p.recomputeMLP:
		case p.packMLP:
			a.h1p = p.alloc(backend.PackedLen(M * I))
		default:
			a.h1 = p.alloc(M * I)
		}
		a.hs = map[*linear]backend.Buf{}
		var shared backend.Buf
		for li, b := range tw.blocks {
			if training && li != i {
				continue
			}
			for _, l := range b.linears() {
				if l.lora == nil {
					continue
				}
				if training {
					a.hs[l] = p.alloc(M * l.lora.r)
				} else {
					if shared == nil {
						shared = p.alloc(M * p.loraR)
					}
					a.hs[l] = shared
				}
			}
		}
	}
	D := m.cfg.ProjectionDim
	p.pooled, p.pmean, p.prstd, p.post, p.out = p.alloc(B*C), p.alloc(B), p.alloc(B), p.alloc(B*C), p.alloc(B*D)
	if tw.proj != nil && tw.proj.lora != nil {
		p.projHs = p.alloc(B * tw.proj.lora.r)
	}
	p.idx = be.AllocInt(B)
	p.ibufs = append(p.ibufs, p.idx)
	for _, id := range []workID{wBranch, wLN} {
		m.reserve(id, M*C)
	}
	m.reserve(wGELU, M*I)
	if p.recomputeMLP || p.packMLP {
		m.reserve(wH1, M*I)
	}
	if training {
		for _, id := range []workID{wDRes, wDLN, wDQ, wDK, wDV, wDAtt} {
			m.reserve(id, M*C)
		}
		m.reserve(wDH1, M*I)
		m.reserve(wDG, M*I)
		m.reserve(wDPost, B*C)
		m.reserve(wDPooled, B*C)
		if p.loraR > 0 {
			m.reserve(wLoraDh, M*p.loraR)
		}
	}
}

// SetDropout turns LoRA dropout on or off for the following forwards (and
// their backward) and sets the seed of its masks. Off by default; has no
// effect without LoRA or with lora_dropout 0. The same seed and rows give
// the same masks, so a GradCache recomputation can replay a no-grad pass.
func (p *plan) SetDropout(enabled bool, seed uint64) {
	p.dropout, p.seed = enabled, seed
	if enabled && p.loraR > 0 && p.m.lora != nil && p.m.lora.Dropout > 0 {
		n := p.B * p.T * p.loraMaxIn
		p.m.reserve(wLoraX, n)
		if p.training {
			p.m.reserve(wLoraDX, n)
		}
	}
}

// Batch is the planned batch size B (forwards take any n <= B).
func (p *plan) Batch() int { return p.B }

// Training reports whether the plan keeps activations for a backward pass.
func (p *plan) Training() bool { return p.training }

// Free releases the plan's buffers.
func (p *plan) Free() {
	for _, b := range p.bufs {
		p.m.be.Free(b)
	}
	p.bufs = nil
}

// check validates a forward's batch against the plan.
func (p *plan) check(n int) error {
	if p.gen != p.m.gen {
		return fmt.Errorf("model: memory plan was created before ApplyLoRA; create a new plan")
	}
	if p.bufs == nil {
		return fmt.Errorf("model: memory plan used after Free")
	}
	if n <= 0 || n > p.B {
		return fmt.Errorf("model: batch of %d rows for a plan of %d", n, p.B)
	}
	return nil
}

// VisionPlan holds the vision tower's activations for batches of up to B
// images (a memory plan). Make one with Model.NewVisionPlan.
type VisionPlan struct {
	plan
	emb, preMean, preRstd backend.Buf
	pix                   backend.Buf // normalised pixels (VisionForward; made on first use)
	img                   backend.ByteBuf
	lut                   backend.Buf     // VisionForwardImages' input and table (first use)
	lutHost               [3][256]float32 // what lut holds, when lutSet
	lutSet                bool
	fromImages            bool     // the last forward's input was img, not pix
	pool                  poolActs // SigLIP's pooling head
}

// TextPlan holds the text tower's activations for batches of up to B
// captions of up to the context length (a memory plan). Make one with
// Model.NewTextPlan.
type TextPlan struct {
	plan
	ids     backend.IntBuf
	hostIDs []int32
	hostIdx []int32
	eot     []int
}

// NewVisionPlan allocates the vision tower's activations for batches of up
// to B images. A training plan keeps every layer's activations for
// VisionBackward; an inference plan shares one layer's buffers across
// layers (much less memory) and cannot run a backward.
func (m *Model) NewVisionPlan(B int, training bool) *VisionPlan {
	vc, T := m.cfg.Vision, m.cfg.VisionSeqLen()
	p := &VisionPlan{}
	p.plan.init(m, &m.vision, B, T, training, false)
	P, NP, C := vc.PatchSize, vc.NumPatches(), vc.HiddenSize
	m.reserve(wCols, B*NP*3*P*P)
	m.reserve(wPatch, B*NP*C)
	if m.cfg.IsSigLIP() {
		p.initPool()
	} else {
		p.emb = p.alloc(B * T * C)
		p.preMean, p.preRstd = p.alloc(B*T), p.alloc(B*T)
	}
	idx := make([]int32, B)
	for b := range idx {
		// CLIP's class token, or the row of SigLIP's head attention kept
		// (every row holds the probe's).
		idx[b] = int32(b * T)
	}
	m.be.UploadInt(p.idx, idx)
	return p
}

// NewTextPlan allocates the text tower's activations for batches of up to B
// captions of up to max_position_embeddings tokens. See NewVisionPlan for
// training versus inference plans.
func (m *Model) NewTextPlan(B int, training bool) *TextPlan {
	T := m.cfg.Text.MaxPositionEmbeddings
	p := &TextPlan{}
	p.plan.init(m, &m.text, B, T, training, !m.cfg.IsSigLIP()) // SigLIP's text attention is bidirectional
	p.ids = m.be.AllocInt(B * T)
	p.ibufs = append(p.ibufs, p.ids)
	p.hostIDs = make([]int32, B*T)
	p.hostIdx = make([]int32, B)
	p.eot = make([]int, B)
	return p
}

// EOT returns the pooled positions of the last forward's rows: CLIP's
// end-of-text tokens (argmax of each row's ids), SigLIP's last positions.
func (p *TextPlan) EOT() []int { return p.eot[:p.n] }

// bf16Activations reports a backend that computes in bf16.
func bf16Activations(be backend.Backend) bool {
	b, ok := be.(backend.BF16Activations)
	return ok && b.BF16Activations()
}
