package model

import (
	"math"
	"math/rand/v2"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/loss"
)

// poolHead is SigLIP's vision head, Hugging Face's
// SiglipMultiheadAttentionPoolingHead: a learned probe token attends to
// the tower's tokens through torch.nn.MultiheadAttention (in_proj_weight
// holds q, k and v), then h + mlp(layernorm(h)).
type poolHead struct {
	probe    *Param // [1, 1, C]
	inW, inB *Param // attention.in_proj_weight [3C, C], in_proj_bias [3C]
	o        *linear
	lnW, lnB *Param
	fc1, fc2 *linear
}

// buildSigLIP allocates a SiglipModel's parameters (zero-filled) under
// their Hugging Face names.
func (m *Model) buildSigLIP(textAct, visionAct backend.Activation) {
	tc, vc := m.cfg.Text, m.cfg.Vision
	m.tokEmb = m.newParam("text_model.embeddings.token_embedding.weight", true, tc.VocabSize, tc.HiddenSize)
	m.txtPos = m.newParam("text_model.embeddings.position_embedding.weight", true, tc.MaxPositionEmbeddings, tc.HiddenSize)
	m.text = m.newTower("text_model", tc.HiddenSize, tc.IntermediateSize, tc.NumAttentionHeads, tc.NumHiddenLayers, tc.LayerNormEps, textAct)
	m.text.lnW = m.newParam("text_model.final_layer_norm.weight", false, tc.HiddenSize)
	m.text.lnB = m.newParam("text_model.final_layer_norm.bias", false, tc.HiddenSize)
	m.text.proj = m.newLinear("text_model.head", tc.HiddenSize, tc.ProjectionSize, true)

	P, C, I := vc.PatchSize, vc.HiddenSize, vc.IntermediateSize
	m.patch = m.newParam("vision_model.embeddings.patch_embedding.weight", true, C, vc.NumChannels, P, P)
	m.patchB = m.newParam("vision_model.embeddings.patch_embedding.bias", false, C)
	m.visPos = m.newParam("vision_model.embeddings.position_embedding.weight", true, vc.NumPatches(), C)
	m.vision = m.newTower("vision_model", C, I, vc.NumAttentionHeads, vc.NumHiddenLayers, vc.LayerNormEps, visionAct)
	m.vision.lnW = m.newParam("vision_model.post_layernorm.weight", false, C)
	m.vision.lnB = m.newParam("vision_model.post_layernorm.bias", false, C)
	h, pre := &poolHead{}, "vision_model.head."
	// The probe is a token like CLIP's class embedding: no weight decay.
	h.probe = m.newParam(pre+"probe", false, 1, 1, C)
	h.inW = m.newParam(pre+"attention.in_proj_weight", true, 3*C, C)
	h.inB = m.newParam(pre+"attention.in_proj_bias", false, 3*C)
	h.o = m.newLinear(pre+"attention.out_proj", C, C, true)
	// nn.MultiheadAttention reads out_proj's weight directly rather than
	// calling the module, so a PEFT adapter there would be ignored by its
	// forward; it is not a LoRA target here (ApplyLoRA skips it).
	m.lins = m.lins[:len(m.lins)-1]
	h.lnW = m.newParam(pre+"layernorm.weight", false, C)
	h.lnB = m.newParam(pre+"layernorm.bias", false, C)
	h.fc1 = m.newLinear(pre+"mlp.fc1", C, I, true)
	h.fc2 = m.newLinear(pre+"mlp.fc2", I, C, true)
	m.mapHead = h
	m.logitScale = m.newParam("logit_scale", false, 1) // shape [1], as SiglipModel's
	m.logitBias = m.newParam("logit_bias", false, 1)
}

// initSigLIP draws random weights roughly as Hugging Face's
// SiglipPreTrainedModel._init_weights: attention and MLP weights
// Xavier-uniform (MLP biases N(0, 1e-6), others 0), embeddings
// N(0, C^-½), the patch embedding and the other linears LeCun normal
// (N(0, fan_in^-½), untruncated here), the probe and in_proj_weight
// Xavier-uniform, layer norms 1/0; logit_scale log 10 and logit_bias -10
// as the SigLIP paper trains from (Hugging Face initialises both to 0).
func (m *Model) initSigLIP(rng *rand.Rand) {
	be := m.be
	fill := func(p *Param, f func() float64) {
		v := make([]float32, p.Len())
		for i := range v {
			v[i] = float32(f())
		}
		be.Upload(p.W, v)
	}
	normal := func(p *Param, std float64) { fill(p, func() float64 { return rng.NormFloat64() * std }) }
	xavier := func(p *Param, fanIn, fanOut int) {
		bound := math.Sqrt(6 / float64(fanIn+fanOut))
		fill(p, func() float64 { return (2*rng.Float64() - 1) * bound })
	}
	ones := func(ps ...*Param) {
		for _, p := range ps {
			fill(p, func() float64 { return 1 })
		}
	}
	mlp := func(fc1, fc2 *linear) {
		xavier(fc1.w, fc1.in, fc1.out)
		xavier(fc2.w, fc2.in, fc2.out)
		normal(fc1.b, 1e-6)
		normal(fc2.b, 1e-6)
	}
	initTower := func(t *tower) {
		for _, b := range t.blocks {
			ones(b.ln1w, b.ln2w)
			for _, l := range []*linear{b.q, b.k, b.v, b.o} {
				xavier(l.w, l.in, l.out)
			}
			mlp(b.fc1, b.fc2)
		}
		ones(t.lnW)
	}
	tc, vc := m.cfg.Text, m.cfg.Vision
	normal(m.tokEmb, math.Pow(float64(tc.HiddenSize), -0.5))
	normal(m.txtPos, math.Pow(float64(tc.HiddenSize), -0.5))
	initTower(&m.text)
	normal(m.text.proj.w, math.Pow(float64(tc.HiddenSize), -0.5))
	C := vc.HiddenSize
	normal(m.patch, math.Pow(float64(3*vc.PatchSize*vc.PatchSize), -0.5))
	normal(m.visPos, math.Pow(float64(C), -0.5))
	initTower(&m.vision)
	h := m.mapHead
	xavier(h.probe, C, C)
	xavier(h.inW, C, 3*C)
	normal(h.o.w, math.Pow(float64(C), -0.5))
	ones(h.lnW)
	mlp(h.fc1, h.fc2)
	fill(m.logitScale, func() float64 { return m.cfg.LogitScaleInitValue })
	fill(m.logitBias, func() float64 { return float64(loss.SigmoidInitLogitBias) })
}

// HasLogitBias reports a model with a learned logit bias (SigLIP).
func (m *Model) HasLogitBias() bool { return m.logitBias != nil }

// LogitBias returns logit_bias (0 for CLIP, which has none), read from the
// backend.
func (m *Model) LogitBias() float32 {
	if m.logitBias == nil {
		return 0
	}
	return m.scalar(m.logitBias)
}

// AddLogitBiasGrad adds d to logit_bias's gradient (see
// AddLogitScaleGrad). A no-op while logit_bias is frozen, or for CLIP.
func (m *Model) AddLogitBiasGrad(d float32) { m.addScalarGrad(m.logitBias, d) }

// poolActs are the vision head's activations (SigLIP's vision plans).
type poolActs struct {
	hid, hMean, hRstd  backend.Buf    // post_layernorm of every token [B·T, C] (training plans), its statistics
	qrow               backend.Buf    // the probe's query [C]
	zeros              backend.IntBuf // [B·T] zeros: broadcasts qrow to every row
	q, k, v, att, scr  backend.Buf    // the attention, every query row the probe's
	res                backend.Buf    // out_proj's output, the MLP's residual [B, C]
	lnMean, lnRstd, h1 backend.Buf    // the head's layer norm statistics [B], fc1's output [B, I]
	hs                 map[*linear]backend.Buf
	patchIDs           backend.IntBuf // 0..B·NP-1: patch row r takes position r mod NP
}

// initPool allocates a SigLIP vision plan's head activations.
func (p *VisionPlan) initPool() {
	m, be := p.m, p.m.be
	B, T, C, I, NH := p.B, p.T, p.tw.C, p.tw.I, p.tw.NH
	a := &p.pool
	a.hMean, a.hRstd = p.alloc(B*T), p.alloc(B*T)
	a.qrow = p.alloc(C)
	if p.training {
		a.hid = p.alloc(B * T * C)
		a.q, a.k, a.v, a.att = p.alloc(B*T*C), p.alloc(B*T*C), p.alloc(B*T*C), p.alloc(B*T*C)
		a.scr = p.alloc(be.AttentionScratchLen(B, T, NH))
	} else {
		// An inference plan's layer buffers, and the workspace's branch
		// buffer (poolForward), are free once the blocks have run: the
		// head uses them instead of five more [B·T, C] buffers.
		l := &p.acts[0]
		a.q, a.k, a.v, a.att, a.scr = l.q, l.k, l.v, l.att, l.scr
	}
	a.res, a.lnMean, a.lnRstd, a.h1 = p.alloc(B*C), p.alloc(B), p.alloc(B), p.alloc(B*I)
	a.zeros = be.AllocInt(B * T)
	a.patchIDs = be.AllocInt(B * T)
	p.ibufs = append(p.ibufs, a.zeros, a.patchIDs)
	ids := make([]int32, B*T)
	for i := range ids {
		ids[i] = int32(i)
	}
	be.UploadInt(a.patchIDs, ids)
	a.hs = map[*linear]backend.Buf{}
	for _, l := range []*linear{m.mapHead.fc1, m.mapHead.fc2} {
		if l.lora == nil {
			continue
		}
		a.hs[l] = p.alloc(B * l.lora.r)
		p.loraMaxIn, p.loraR = max(p.loraMaxIn, l.in), l.lora.r
	}
	if p.training && p.loraR > 0 {
		m.reserve(wLoraDh, B*T*p.loraR)
	}
}

// siglipVision runs SigLIP's vision tower from the patch rows in the
// workspace: patch embedding with bias plus positions (no class token, no
// pre-LN), the blocks, post_layernorm and the pooling head.
func (m *Model) siglipVision(p *VisionPlan, n int) backend.Buf {
	vc, be := m.cfg.Vision, m.be
	P, NP, C := vc.PatchSize, vc.NumPatches(), vc.HiddenSize
	patch := p.work(wPatch, n*NP*C)
	be.Linear(patch, p.work(wCols, n*NP*3*P*P), m.patch.W, m.patchB.W, n*NP, 3*P*P, C)
	// out[b,t] = patch[b·NP+t] + pos[t]: the token embedding op with the
	// patch rows as the table.
	be.EmbedTokens(p.xs[0], p.pool.patchIDs, patch, m.visPos.W, n, NP, C)
	x := p.runBlocks(n, NP)
	p.n, p.t = n, NP
	return p.poolForward(x, n)
}

// inProj returns the q, k or v part (i = 0, 1, 2) of the head's in_proj
// weight and bias, from their values (or, with grad, their gradients:
// nil when frozen).
func (m *Model) inProj(i int, grad bool) (w, b backend.Buf) {
	h, C := m.mapHead, m.cfg.Vision.HiddenSize
	pw, pb := h.inW.W, h.inB.W
	if grad {
		pw, pb = m.grad(h.inW), m.grad(h.inB)
	}
	if pw != nil {
		w = pw.Slice(i*C*C, C*C)
	}
	if pb != nil {
		b = pb.Slice(i*C, C)
	}
	return w, b
}

// poolForward is SiglipMultiheadAttentionPoolingHead on the last residual
// x [n·T, C] (after post_layernorm). The probe's single query is
// broadcast to all T query rows of the backend's self-attention, so every
// output row is the probe's attention; row 0 of each image is kept (the
// T-fold work is one attention layer's, small beside the tower).
func (p *VisionPlan) poolForward(x backend.Buf, n int) backend.Buf {
	m, be, h, a := p.m, p.m.be, p.m.mapHead, &p.pool
	C, T, NH, eps := p.tw.C, p.t, p.tw.NH, p.tw.eps
	M := n * T
	hid := a.hid // kept for the backward, or (inference) the free branch buffer
	if hid == nil {
		hid = p.work(wBranch, M*C)
	}
	be.LayerNorm(hid, a.hMean, a.hRstd, x, p.tw.lnW.W, p.tw.lnB.W, M, C, eps)
	wq, bq := m.inProj(0, false)
	wk, bk := m.inProj(1, false)
	wv, bv := m.inProj(2, false)
	be.Linear(a.qrow, h.probe.W, wq, bq, 1, C, C)
	be.GatherRows(a.q, a.qrow, a.zeros, M, C)
	be.Linear(a.k, hid, wk, bk, M, C, C)
	be.Linear(a.v, hid, wv, bv, M, C, C)
	be.Attention(a.att, a.scr, a.q, a.k, a.v, n, T, C, NH, false)
	be.GatherRows(p.pooled, a.att, p.idx, n, C)
	p.lin(h.o, a.res, p.pooled, n, nil)
	p.lin(h.fc1, a.h1, p.headNorm(n), n, a.hs[h.fc1])
	p.lin(h.fc2, p.out, p.gelu(a.h1, nil, n), n, a.hs[h.fc2])
	be.Add(p.out, p.out, a.res, n*C)
	return p.out.Slice(0, n*C)
}

// headNorm writes the head's layer norm of its residual into the
// workspace (saving its statistics).
func (p *VisionPlan) headNorm(n int) backend.Buf {
	h, a := p.m.mapHead, &p.pool
	ln := p.work(wLN, n*p.tw.C)
	p.m.be.LayerNorm(ln, a.lnMean, a.lnRstd, a.res, h.lnW.W, h.lnB.W, n, p.tw.C, p.tw.eps)
	return ln
}

// poolBackward backpropagates dEmb [n, C] through the pooling head and
// post_layernorm, leaving d(last residual) in the workspace's wDRes.
func (p *VisionPlan) poolBackward(dEmb backend.Buf) {
	m, be, h, a := p.m, p.m.be, p.m.mapHead, &p.pool
	n, T, C, I, NH := p.n, p.t, p.tw.C, p.tw.I, p.tw.NH
	M := n * T
	// out = res + fc2(act(fc1(layernorm(res))))
	var g backend.Buf
	if needsInput(h.fc2) {
		g = p.gelu(a.h1, nil, n)
	}
	dg := p.work(wDG, n*I)
	p.linBack(h.fc2, dg, dEmb, g, n, a.hs[h.fc2], backend.SetGrad)
	dh1 := p.work(wDH1, n*I)
	p.geluBackward(dh1, dg, a.h1, n)
	var ln backend.Buf
	if needsInput(h.fc1) {
		ln = p.headNorm(n)
	}
	dln := p.work(wDPost, n*C)
	p.linBack(h.fc1, dln, dh1, ln, n, a.hs[h.fc1], backend.SetGrad)
	dres := p.work(wDPooled, n*C)
	be.Copy(dres, dEmb)
	gw, gb := m.lnGrads(h.lnW, h.lnB)
	be.LayerNormBackward(dres, gw, gb, dln, a.res, h.lnW.W, a.lnMean, a.lnRstd, n, C)
	// res = out_proj(attention row 0)
	dpool := p.work(wDLN, n*C)
	p.linBack(h.o, dpool, dres, p.pooled, n, nil, backend.SetGrad)
	datt := p.zero(wDAtt, M*C)
	be.GatherRowsBackward(datt, dpool, p.idx, n, C)
	gwq, gbq := m.inProj(0, true)
	gwk, gbk := m.inProj(1, true)
	gwv, gbv := m.inProj(2, true)
	gProbe := m.grad(h.probe)
	var dq backend.Buf
	if gProbe != nil || gwq != nil || gbq != nil {
		dq = p.work(wDQ, M*C)
	}
	dk, dv := p.work(wDK, M*C), p.work(wDV, M*C)
	// Only row 0 of each image has an output gradient, so only those rows
	// get a query gradient, and the keys and values get the probe's.
	be.AttentionBackward(dq, dk, dv, datt, a.scr, a.q, a.k, a.v, a.att, n, T, C, NH, false, backend.SetGrad)
	if dq != nil {
		rows := p.work(wDPost, n*C)
		be.GatherRows(rows, dq, p.idx, n, C)
		dqrow := p.zero(wDPooled, C)
		be.GatherRowsBackward(dqrow, rows, a.zeros, n, C)
		wq, _ := m.inProj(0, false)
		be.LinearBackward(gProbe, gwq, gbq, dqrow, h.probe.W, wq, 1, C, C, backend.AddGrad)
	}
	wk, _ := m.inProj(1, false)
	wv, _ := m.inProj(2, false)
	dhid := p.work(wDLN, M*C)
	be.LinearBackward(dhid, gwk, gbk, dk, a.hid, wk, M, C, C, backend.SetGrad)
	be.LinearBackward(dhid, gwv, gbv, dv, a.hid, wv, M, C, C, backend.AddGrad)
	dx := p.zero(wDRes, M*C)
	gw, gb = m.lnGrads(p.tw.lnW, p.tw.lnB)
	be.LayerNormBackward(dx, gw, gb, dhid, p.xs[len(p.xs)-1], p.tw.lnW.W, a.hMean, a.hRstd, M, C)
}

// siglipVisionBackward is VisionBackward for SigLIP: the head, the
// blocks, then the position and patch embeddings (whose input gradient is
// the residual's: the patch rows enter the stream unchanged).
func (m *Model) siglipVisionBackward(p *VisionPlan, dEmb backend.Buf) {
	gPos, gPatch, gPB := m.grad(m.visPos), m.grad(m.patch), m.grad(m.patchB)
	needBelow := gPos != nil || gPatch != nil || gPB != nil
	p.poolBackward(dEmb)
	p.backBlocks(needBelow)
	if !needBelow {
		return
	}
	vc, be := m.cfg.Vision, m.be
	n, NP, C, P := p.n, vc.NumPatches(), vc.HiddenSize, vc.PatchSize
	dx := p.work(wDRes, n*NP*C)
	if gPos != nil {
		be.EmbedTokensBackward(nil, gPos, dx, p.pool.patchIDs, n, NP, C)
	}
	if gPatch != nil || gPB != nil {
		var cols backend.Buf
		if gPatch != nil {
			cols = p.patchify(n)
		}
		be.LinearBackward(nil, gPatch, gPB, dx, cols, m.patch.W, n*NP, 3*P*P, C, backend.AddGrad)
	}
}

// geluBackward is the MLP activation's backward, dIn = dOut·act'(h1), for n
// rows of the tower's intermediate width.
func (p *plan) geluBackward(dIn, dOut, h1 backend.Buf, n int) {
	p.m.be.ActivateBackward(p.tw.act, dIn, dOut, h1, n*p.tw.I, backend.SetGrad)
}
