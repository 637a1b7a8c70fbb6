package model

import (
	"fmt"

	"github.com/clipline/clipline/internal/backend"
)

// zero returns the first n values of workspace buffer id, zeroed
// (backward operations accumulate).
func (p *plan) zero(id workID, n int) backend.Buf {
	s := p.work(id, n)
	p.m.be.Zero(s)
	return s
}

// needsInput reports whether l's backward reads l's input: for its weight
// gradient or its adapter's down-projection gradient. Otherwise the input
// is not recomputed for the backward.
func needsInput(l *linear) bool {
	return l.w.Trainable || (l.lora != nil && l.lora.a.Trainable)
}

// linBack computes the gradients of lin: dIn (may be nil; added to, or
// with SetGrad overwritten), and accumulates the weight and bias gradients
// of trainable parameters and the adapter's. in may be nil when
// !needsInput(l).
func (p *plan) linBack(l *linear, dIn, dOut, in backend.Buf, M int, hs backend.Buf, mode backend.GradWrite) {
	m, be := p.m, p.m.be
	dW, dB := m.grad(l.w), m.grad(l.b)
	if dIn != nil || dW != nil || dB != nil {
		// dIn is always written here first, so the adapter below adds.
		be.LinearBackward(dIn, dW, dB, dOut, in, l.w.W, M, l.in, l.out, mode)
	}
	ad := l.lora
	if ad == nil {
		return
	}
	gA, gB := m.grad(ad.a), m.grad(ad.b)
	if dIn == nil && gA == nil && gB == nil {
		return
	}
	// out += B·hs with hs = s·A·x: dB += dOutᵀ·hs, dhs = dOut·B, dh = s·dhs.
	dh := p.work(wLoraDh, M*ad.r)
	be.LinearBackward(dh, gB, nil, dOut, hs, ad.b.W, M, ad.r, l.out, backend.SetGrad)
	be.Scale(dh, ad.scale, M*ad.r)
	if gA == nil && dIn == nil {
		return
	}
	if !p.dropoutOn(l) {
		be.LinearBackward(dIn, gA, nil, dh, in, ad.a.W, M, l.in, ad.r, backend.AddGrad)
		return
	}
	n := M * l.in
	var xd backend.Buf
	if gA != nil {
		// Replay the forward's mask (same seed, same rows) instead of storing it.
		xd = p.work(wLoraX, n)
		be.Dropout(xd, in, ad.dropout, p.maskSeed(l), n)
	}
	if dIn == nil {
		be.LinearBackward(nil, gA, nil, dh, xd, ad.a.W, M, l.in, ad.r, backend.AddGrad)
		return
	}
	dxd := p.work(wLoraDX, n)
	be.LinearBackward(dxd, gA, nil, dh, xd, ad.a.W, M, l.in, ad.r, backend.SetGrad)
	be.DropoutBackward(dIn, dxd, ad.dropout, p.maskSeed(l), n)
}

// lnGrads returns the gradient buffers of a layer norm's weight and bias.
func (m *Model) lnGrads(w, b *Param) (backend.Buf, backend.Buf) { return m.grad(w), m.grad(b) }

// backHead runs the head backward from dEmb [n,D] and leaves d(last
// residual) in the workspace's wDRes (zeroed first).
func (p *plan) backHead(dEmb backend.Buf) {
	m, be, tw := p.m, p.m.be, p.tw
	n, C := p.n, tw.C
	dPost := p.work(wDPost, n*C)
	p.linBack(tw.proj, dPost, dEmb, p.post, n, p.projHs, backend.SetGrad)
	dPooled := p.zero(wDPooled, n*C)
	gw, gb := m.lnGrads(tw.lnW, tw.lnB)
	be.LayerNormBackward(dPooled, gw, gb, dPost, p.pooled, tw.lnW.W, p.pmean, p.prstd, n, C)
	dres := p.zero(wDRes, n*p.t*C)
	be.GatherRowsBackward(dres, dPooled, p.idx, n, C)
}

// backBlocks runs the blocks backward; on return wDRes holds d(xs[0]),
// unless needBelow is false (nothing under the blocks trains, as with LoRA):
// then the first block's input gradient is skipped.
func (p *plan) backBlocks(needBelow bool) {
	m, be, tw := p.m, p.m.be, p.tw
	n, t := p.n, p.t
	M, C, I := n*t, tw.C, tw.I
	dres := p.work(wDRes, M*C)
	for li := tw.L - 1; li >= 0; li-- {
		b, a := tw.blocks[li], &p.acts[li]
		xin := p.xs[li]
		// Inputs of the linears are recomputed when their backward reads
		// them; fc1's output too when it was not kept, or kept packed while
		// fc2's input (from the fp32 values) is needed.
		var ln2 backend.Buf
		h1 := a.h1
		if h1 == nil && (a.h1p == nil || needsInput(b.fc2)) {
			ln2 = p.layerNorm2(b, a, M)
			h1 = p.hidden(a, M)
			p.lin(b.fc1, h1, ln2, M, a.hs[b.fc1]) // the same dropout mask, the same values
		}
		var in backend.Buf
		if needsInput(b.fc2) {
			in = p.gelu(h1, nil, M)
		}
		dg := p.work(wDG, M*I)
		p.linBack(b.fc2, dg, dres, in, M, a.hs[b.fc2], backend.SetGrad)
		dh1 := p.work(wDH1, M*I)
		if h1 != nil {
			be.ActivateBackward(tw.act, dh1, dg, h1, M*I, backend.SetGrad)
		} else {
			be.ActivateBackwardPacked(tw.act, dh1, dg, a.h1p, M*I, backend.SetGrad)
		}
		if ln2 == nil && needsInput(b.fc1) {
			ln2 = p.layerNorm2(b, a, M)
		}
		dln := p.work(wDLN, M*C)
		p.linBack(b.fc1, dln, dh1, ln2, M, a.hs[b.fc1], backend.SetGrad)
		gw, gb := m.lnGrads(b.ln2w, b.ln2b)
		be.LayerNormBackward(dres, gw, gb, dln, a.x2, b.ln2w.W, a.mean2, a.rstd2, M, C)

		datt := p.work(wDAtt, M*C)
		p.linBack(b.o, datt, dres, a.att, M, a.hs[b.o], backend.SetGrad)
		dq, dk, dv := p.work(wDQ, M*C), p.work(wDK, M*C), p.work(wDV, M*C)
		be.AttentionBackward(dq, dk, dv, datt, a.scr, a.q, a.k, a.v, a.att, n, t, C, tw.NH, p.causal, backend.SetGrad)
		in = nil
		if needsInput(b.q) || needsInput(b.k) || needsInput(b.v) {
			in = p.layerNorm1(b, a, xin, M)
		}
		gw, gb = m.lnGrads(b.ln1w, b.ln1b)
		if li == 0 && !needBelow && gw == nil && gb == nil {
			p.linBack(b.q, nil, dq, in, M, a.hs[b.q], backend.AddGrad)
			p.linBack(b.k, nil, dk, in, M, a.hs[b.k], backend.AddGrad)
			p.linBack(b.v, nil, dv, in, M, a.hs[b.v], backend.AddGrad)
			continue
		}
		dln = p.work(wDLN, M*C)
		p.linBack(b.q, dln, dq, in, M, a.hs[b.q], backend.SetGrad)
		p.linBack(b.k, dln, dk, in, M, a.hs[b.k], backend.AddGrad)
		p.linBack(b.v, dln, dv, in, M, a.hs[b.v], backend.AddGrad)
		var dIn backend.Buf = dres
		if li == 0 && !needBelow {
			dIn = nil
		}
		be.LayerNormBackward(dIn, gw, gb, dln, xin, b.ln1w.W, a.mean1, a.rstd1, M, C)
	}
}

func (p *plan) checkBackward(dEmb backend.Buf) error {
	if !p.training {
		return fmt.Errorf("model: backward on an inference plan (create it with training=true)")
	}
	if p.gen != p.m.gen {
		return fmt.Errorf("model: memory plan was created before ApplyLoRA; create a new plan")
	}
	if p.n == 0 {
		return fmt.Errorf("model: backward before any forward on this plan")
	}
	if want := p.n * p.m.cfg.ProjectionDim; dEmb.Len() < want {
		return fmt.Errorf("model: embedding gradient has %d values, want %d ([%d, %d])", dEmb.Len(), want, p.n, p.m.cfg.ProjectionDim)
	}
	return nil
}

// VisionBackward backpropagates dEmb = dLoss/d(image embeddings) [n, D]
// (n as in the plan's last forward) and ACCUMULATES every trainable
// parameter's gradient. The plan must be a training plan whose last
// forward produced those embeddings.
func (m *Model) VisionBackward(p *VisionPlan, dEmb backend.Buf) error {
	if err := p.checkBackward(dEmb); err != nil {
		return err
	}
	if m.cfg.IsSigLIP() {
		m.siglipVisionBackward(p, dEmb)
		return nil
	}
	gCls, gPos, gPatch := m.grad(m.cls), m.grad(m.visPos), m.grad(m.patch)
	gw, gb := m.lnGrads(m.preLNW, m.preLNB)
	needBelow := gCls != nil || gPos != nil || gPatch != nil || gw != nil || gb != nil
	p.backHead(dEmb)
	p.backBlocks(needBelow)
	if !needBelow {
		return nil // frozen embeddings (LoRA): nothing below the blocks trains
	}
	vc, be := m.cfg.Vision, m.be
	n, T, C, NP, P := p.n, p.t, vc.HiddenSize, vc.NumPatches(), vc.PatchSize
	dEmb0 := p.zero(wDLN, n*T*C)
	be.LayerNormBackward(dEmb0, gw, gb, p.work(wDRes, n*T*C), p.emb, m.preLNW.W, p.preMean, p.preRstd, n*T, C)
	if gCls == nil && gPos == nil && gPatch == nil {
		return nil
	}
	var dPatch backend.Buf
	if gPatch != nil {
		dPatch = p.zero(wDQ, n*NP*C)
	}
	be.AssembleVisionBackward(dPatch, gCls, gPos, dEmb0, n, NP, C)
	if gPatch != nil {
		be.LinearBackward(nil, gPatch, nil, dPatch, p.patchify(n), m.patch.W, n*NP, 3*P*P, C, backend.AddGrad)
	}
	return nil
}

// TextBackward backpropagates dEmb = dLoss/d(text embeddings) [n, D] and
// ACCUMULATES every trainable parameter's gradient (see VisionBackward).
func (m *Model) TextBackward(p *TextPlan, dEmb backend.Buf) error {
	if err := p.checkBackward(dEmb); err != nil {
		return err
	}
	gTok, gPos := m.grad(m.tokEmb), m.grad(m.txtPos)
	p.backHead(dEmb)
	p.backBlocks(gTok != nil || gPos != nil)
	if gTok != nil || gPos != nil {
		m.be.EmbedTokensBackward(gTok, gPos, p.work(wDRes, p.n*p.t*m.cfg.Text.HiddenSize), p.ids, p.n, p.t, m.cfg.Text.HiddenSize)
	}
	return nil
}
