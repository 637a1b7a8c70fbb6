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
	return p.dropout && l.lora != nil && l.lora.dropout > 0
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
		x = p.work(wLoraX, n)
		be.Dropout(x, in, ad.dropout, p.maskSeed(l), n)
	}
	be.Linear(hs, x, ad.a.W, nil, M, l.in, ad.r)
	be.Scale(hs, ad.scale, M*ad.r)
	be.LinearAdd(out, hs, ad.b.W, M, ad.r, l.out)
}

// layerNorm1 writes block li's first layer norm of xin into the workspace
// (saving its statistics in a); layerNorm2 the second, of a.x2.
func (p *plan) layerNorm1(b *block, a *layerActs, xin backend.Buf, M int) backend.Buf {
	ln := p.work(wLN, M*p.tw.C)
	p.m.be.LayerNorm(ln, a.mean1, a.rstd1, xin, b.ln1w.W, b.ln1b.W, M, p.tw.C, p.tw.eps)
	return ln
}

func (p *plan) layerNorm2(b *block, a *layerActs, M int) backend.Buf {
	ln := p.work(wLN, M*p.tw.C)
	p.m.be.LayerNorm(ln, a.mean2, a.rstd2, a.x2, b.ln2w.W, b.ln2b.W, M, p.tw.C, p.tw.eps)
	return ln
}

// gelu writes the tower's activation of h1 into the workspace, keeping h1
// as packed bf16 in packed when that is not nil.
func (p *plan) gelu(h1, packed backend.Buf, M int) backend.Buf {
	g, n := p.work(wGELU, M*p.tw.I), M*p.tw.I
	if packed != nil {
		p.m.be.ActivatePacked(p.tw.act, g, h1, packed, n)
	} else {
		p.m.be.Activate(p.tw.act, g, h1, n)
	}
	return g
}

// hidden is layer a's MLP hidden activation buffer: kept in the plan, or
// the workspace's when the backward recomputes it or keeps it packed.
func (p *plan) hidden(a *layerActs, M int) backend.Buf {
	if a.h1 == nil {
		return p.work(wH1, M*p.tw.I)
	}
	return a.h1
}

// runBlocks runs the transformer blocks on the residual stream xs[0] for n
// sequences of t tokens, leaving the result in the returned buffer.
func (p *plan) runBlocks(n, t int) backend.Buf {
	be, tw := p.m.be, p.tw
	M, C := n*t, tw.C
	branch := p.work(wBranch, M*C)
	for li, b := range tw.blocks {
		a := &p.acts[0]
		xin, xout := p.xs[0], p.xs[0]
		if p.training {
			a = &p.acts[li]
			xin, xout = p.xs[li], p.xs[li+1]
		}
		ln := p.layerNorm1(b, a, xin, M)
		p.lin(b.q, a.q, ln, M, a.hs[b.q])
		p.lin(b.k, a.k, ln, M, a.hs[b.k])
		p.lin(b.v, a.v, ln, M, a.hs[b.v])
		be.Attention(a.att, a.scr, a.q, a.k, a.v, n, t, C, tw.NH, p.causal)
		p.lin(b.o, branch, a.att, M, a.hs[b.o])
		be.Add(a.x2, xin, branch, M*C)
		ln = p.layerNorm2(b, a, M)
		h1 := p.hidden(a, M)
		p.lin(b.fc1, h1, ln, M, a.hs[b.fc1])
		p.lin(b.fc2, branch, p.gelu(h1, a.h1p, M), M, a.hs[b.fc2])
		be.Add(xout, a.x2, branch, M*C)
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
	S := m.cfg.Vision.ImageSize
	if len(pixels) != n*3*S*S {
		return nil, fmt.Errorf("model: %d pixel values for %d images of 3x%dx%d (want %d)", len(pixels), n, S, S, n*3*S*S)
	}
	if p.pix == nil {
		p.pix = p.alloc(p.B * 3 * S * S)
	}
	m.be.Upload(p.pix, pixels)
	p.fromImages = false
	p.patchify(n)
	return m.visionFromPatches(p, n), nil
}

// VisionForwardImages is VisionForward of n decoded images: hwc holds n
// uint8 RGB images [n, S, S, 3] as decode writes them, and norm maps each
// channel's levels to normalised values (imageproc.Config.LUT). The bytes
// go to the device, a quarter of the float32 pixels, and are normalised
// there with identical results.
func (m *Model) VisionForwardImages(p *VisionPlan, hwc []uint8, norm *[3][256]float32, n int) (backend.Buf, error) {
	if err := p.check(n); err != nil {
		return nil, err
	}
	S := m.cfg.Vision.ImageSize
	if len(hwc) != n*S*S*3 {
		return nil, fmt.Errorf("model: %d pixel bytes for %d images of %dx%dx3 (want %d)", len(hwc), n, S, S, n*S*S*3)
	}
	be := m.be
	if p.img == nil {
		p.img = be.AllocBytes(p.B * S * S * 3)
		p.lut = p.alloc(3 * 256)
	}
	if !p.lutSet || p.lutHost != *norm {
		p.lutHost, p.lutSet = *norm, true
		flat := make([]float32, 0, 3*256)
		for c := range norm {
			flat = append(flat, norm[c][:]...)
		}
		be.Upload(p.lut, flat)
	}
	be.UploadBytes(p.img, hwc)
	p.fromImages = true
	p.patchify(n)
	return m.visionFromPatches(p, n), nil
}

// patchify writes the patch rows of the last forward's n images into the
// workspace (again in the backward, which needs them only when the patch
// embedding trains).
func (p *VisionPlan) patchify(n int) backend.Buf {
	vc := p.m.cfg.Vision
	S, P := vc.ImageSize, vc.PatchSize
	cols := p.work(wCols, n*3*S*S)
	if p.fromImages {
		p.m.be.PatchifyImages(cols, p.img, p.lut, n, S, P)
	} else {
		p.m.be.Patchify(cols, p.pix, n, S, P)
	}
	return cols
}

// visionFromPatches runs the vision tower from the patch rows in the
// workspace.
func (m *Model) visionFromPatches(p *VisionPlan, n int) backend.Buf {
	if m.cfg.IsSigLIP() {
		return m.siglipVision(p, n)
	}
	vc, be := m.cfg.Vision, m.be
	P, NP, C, T := vc.PatchSize, vc.NumPatches(), vc.HiddenSize, vc.SeqLen()
	patch := p.work(wPatch, n*NP*C)
	be.Linear(patch, p.work(wCols, n*NP*3*P*P), m.patch.W, nil, n*NP, 3*P*P, C)
	be.AssembleVision(p.emb, patch, m.cls.W, m.visPos.W, n, NP, C)
	be.LayerNorm(p.xs[0], p.preMean, p.preRstd, p.emb, m.preLNW.W, m.preLNB.W, n*T, C, m.vision.eps)
	x := p.runBlocks(n, T)
	p.n, p.t = n, T
	return p.head(x, n)
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
		if m.cfg.IsSigLIP() {
			e = L - 1 // SigLIP pools the last position, and attends both ways: all L count
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
