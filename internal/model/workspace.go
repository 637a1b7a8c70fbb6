package model

import "github.com/clipline/clipline/internal/backend"

// workID names a buffer of the model's workspace.
type workID int

const (
	wBranch workID = iota // a branch's output before its residual add [M, C]
	wLN                   // a layer norm's output, or its recomputation [M, C]
	wGELU                 // the activation's output, or its recomputation [M, I]
	wLoraX                // an adapter's dropped-out input [M, in]
	wLoraDX               // the gradient of that input [M, in]
	wLoraDh               // an adapter's hidden gradient [M, r]
	wDRes                 // the gradient of the residual stream [M, C]
	wDLN                  // the gradient of a layer norm's output [M, C]
	wDQ                   // attention's query, key and value gradients [M, C]
	wDK
	wDV
	wDAtt // the gradient of attention's output [M, C]
	wDH1  // the gradients of the MLP's hidden layer [M, I]
	wDG
	wDPost   // the gradient of the head's layer-norm output [B, C]
	wDPooled // the gradient of the pooled rows, the head's input [B, C]
	wH1      // fc1's output, recomputed in the backward (Model.RecomputeMLP) [M, I]
	nWork
)

// The vision tower's patch rows [B·NP, 3·P·P] and their embeddings [B·NP, C]
// are used before the blocks run forward and after they run backward, when
// the MLP's gradient buffers hold nothing, so they share those.
const (
	wCols  = wDH1
	wPatch = wDG
)

// workspace is working memory shared by every plan of a model: buffers
// whose values live only within one layer's forward or within one backward
// pass (branch outputs, layer-norm outputs, the gradients flowing down a
// tower). Both towers' plans use the same buffers, sized for the largest,
// since the towers run one after the other; this is why plans of one model
// must not run concurrently. What a backward pass needs from the forward is
// kept in the plan, and what is cheap to recompute (layer norms, the activation)
// is recomputed here instead of being kept for every layer.
type workspace struct {
	bufs [nWork]backend.Buf
}

// reserve makes workspace buffer id hold at least n values. Plans reserve
// their sizes when they are made, so forwards and backwards never allocate.
func (m *Model) reserve(id workID, n int) {
	n = max(n, 1)
	b := m.work.bufs[id]
	if b != nil && b.Len() >= n {
		return
	}
	if b != nil {
		m.be.Free(b) // work queued on it runs first (one stream, or synchronous)
	}
	m.work.bufs[id] = m.be.Alloc(n)
}

// workBuf returns the first n values of workspace buffer id.
func (m *Model) workBuf(id workID, n int) backend.Buf { return m.work.bufs[id].Slice(0, n) }

// freeWork releases the workspace.
func (m *Model) freeWork() {
	for i, b := range m.work.bufs {
		if b != nil {
			m.be.Free(b)
			m.work.bufs[i] = nil
		}
	}
}
