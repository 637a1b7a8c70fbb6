package model

import (
	"fmt"

	"github.com/clipline/clipline/internal/backend"
)

// bias returns l's bias buffer or an untyped nil.
func bias(l *linear) backend.Buf {
	if l.b == nil {
		return nil
	}
	return l.b.W
}

// maskSeed derives a dropout seed per module from the plan's seed
// (splitmix64 finaliser), so each adapter draws independent masks.
func (p *plan) maskSeed(l *linear) uint64 {
	z := p.seed + (l.id+1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// dropoutOn reports whether l's adapter input is dropped out in this pass.
func (p *plan) dropoutOn(l *linear) bool {
	return p.dropout && l.lora != nil && l.lora.dropout > 0 && p.loraMask != nil
}

// lin computes out[M,out] = in·Wᵀ + b (+ (alpha/r)·B·A·dropout(in) with
// LoRA, saving the scaled hidden (alpha/r)·A·x in hs for the backward).
func (p *plan) lin(l *linear, out, in backend.Buf, M int, hs backend.Buf) {
	be := p.m.be
	be.Linear(out, in, l.w.W, bias(l), M, l.in, l.out)
	ad := l.lora
	if ad == nil {
		return
	}
	x := in
	if p.dropoutOn(l) {
		n := M * l.in
		be.DropoutMask(p.loraMask, ad.dropout, p.maskSeed(l), n)
		be.Mul(p.loraXd, in, p.loraMask, n)
		x = p.loraXd
	}
	be.Linear(hs, x, ad.a.W, nil, M, l.in, ad.r)
	be.Scale(hs, ad.scale, M*ad.r)
	be.Linear(p.loraTmp, hs, ad.b.W, nil, M, ad.r, l.out)
	be.Add(out, out, p.loraTmp, M*l.out)
}

// runBlocks runs the transformer blocks on the residual stream xs[0] for n
// sequences of t tokens, leaving the result in the returned buffer.
func (p *plan) runBlocks(n, t int) backend.Buf {
	be, tw := p.m.be, p.tw
	M, C, I := n*t, tw.C, tw.I
	for li, b := range tw.blocks {
		a := &p.acts[0]
		xin, x2, xout := p.xs[0], p.xs[0], p.xs[0]
		if p.training {
			a = &p.acts[li]
			xin, x2, xout = p.xs[li], a.x2, p.xs[li+1]
		}
		be.LayerNorm(a.ln1, a.mean1, a.rstd1, xin, b.ln1w.W, b.ln1b.W, M, C, tw.eps)
		p.lin(b.q, a.q, a.ln1, M, a.hs[b.q])
		p.lin(b.k, a.k, a.ln1, M, a.hs[b.k])
		p.lin(b.v, a.v, a.ln1, M, a.hs[b.v])
		be.Attention(a.att, a.scr, a.q, a.k, a.v, n, t, C, tw.NH, p.causal)
		p.lin(b.o, p.tmpC, a.att, M, a.hs[b.o])
		be.Add(x2, xin, p.tmpC, M*C)
		be.LayerNorm(a.ln2, a.mean2, a.rstd2, x2, b.ln2w.W, b.ln2b.W, M, C, tw.eps)
		p.lin(b.fc1, a.h1, a.ln2, M, a.hs[b.fc1])
		be.QuickGELU(a.g, a.h1, M*I)
		p.lin(b.fc2, p.tmpC, a.g, M, a.hs[b.fc2])
		be.Add(xout, x2, p.tmpC, M*C)
	}
	return p.xs[len(p.xs)-1]
}

// head pools the rows listed in idx from x, applies the final layer norm
// and the projection, and returns the [n, D] embeddings.
func (p *plan) head(x backend.Buf, n int) backend.Buf {
	be, tw := p.m.be, p.tw
	C := tw.C
	be.GatherRows(p.pooled, x, p.idx, n, C)
	be.LayerNorm(p.post, p.pmean, p.prstd, p.pooled, tw.lnW.W, tw.lnB.W, n, C, tw.eps)
	p.lin(tw.proj, p.out, p.post, n, p.projHs)
	return p.out.Slice(0, n*p.m.cfg.ProjectionDim)
}

// VisionForward embeds n images (n <= the plan's B): pixels holds n
// normalised images [n, 3, S, S] (channel-first, CLIP's mean/std applied).
// It returns the unnormalised image embeddings [n, D], a view into the plan
// valid until its next forward.
func (m *Model) VisionForward(p *VisionPlan, pixels []float32, n int) (backend.Buf, error) {
	if err := p.check(n); err != nil {
		return nil, err
	}
	vc := m.cfg.Vision
	S, P, NP, C := vc.ImageSize, vc.PatchSize, vc.NumPatches(), vc.HiddenSize
	T := vc.SeqLen()
	if len(pixels) != n*3*S*S {
		return nil, fmt.Errorf("model: %d pixel values for %d images of 3x%dx%d (want %d)", len(pixels), n, S, S, n*3*S*S)
	}
	be := m.be
	be.Upload(p.pix, pixels)
	be.Patchify(p.cols, p.pix, n, S, P)
	be.Linear(p.patch, p.cols, m.patch.W, nil, n*NP, 3*P*P, C)
	be.AssembleVision(p.emb, p.patch, m.cls.W, m.visPos.W, n, NP, C)
	be.LayerNorm(p.xs[0], p.preMean, p.preRstd, p.emb, m.preLNW.W, m.preLNB.W, n*T, C, m.vision.eps)
	x := p.runBlocks(n, T)
	p.n, p.t = n, T
	return p.head(x, n), nil
}

// TextForward embeds n token sequences (n <= the plan's B): ids holds n
// rows of L ids each (L = len(ids)/n <= max_position_embeddings), padded
// after the end-of-text token, which is each row's largest id (OpenAI CLIP's
// pooling rule). It returns the unnormalised text embeddings [n, D], a view
// into the plan valid until its next forward.
//
// Attention is causal, so positions after the last end-of-text token of the
// batch cannot affect any pooled output: only the first max(eot)+1
// positions are computed.
func (m *Model) TextForward(p *TextPlan, ids []int32, n int) (backend.Buf, error) {
	if err := p.check(n); err != nil {
		return nil, err
	}
	tc := m.cfg.Text
	if len(ids) == 0 || len(ids)%n != 0 {
		return nil, fmt.Errorf("model: %d token ids do not split into %d rows", len(ids), n)
	}
	L := len(ids) / n
	if L > tc.MaxPositionEmbeddings {
		return nil, fmt.Errorf("model: token rows of length %d exceed the context length %d", L, tc.MaxPositionEmbeddings)
	}
	T := 0
	for b := range n {
		row := ids[b*L : (b+1)*L]
		e := 0
		for i, id := range row {
			if id < 0 || int(id) >= tc.VocabSize {
				return nil, fmt.Errorf("model: token id %d at row %d position %d is outside the vocabulary [0, %d)", id, b, i, tc.VocabSize)
			}
			if id > row[e] {
				e = i
			}
		}
		p.eot[b] = e
		T = max(T, e+1)
	}
	for b := range n {
		copy(p.hostIDs[b*T:(b+1)*T], ids[b*L:b*L+T])
		p.hostIdx[b] = int32(b*T + p.eot[b])
	}
	be, C := m.be, tc.HiddenSize
	be.UploadInt(p.ids, p.hostIDs[:n*T])
	be.UploadInt(p.idx, p.hostIdx[:n])
	be.EmbedTokens(p.xs[0], p.ids, m.tokEmb.W, m.txtPos.W, n, T, C)
	x := p.runBlocks(n, T)
	p.n, p.t = n, T
	return p.head(x, n), nil
}
