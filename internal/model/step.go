package model

import (
	"fmt"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/loss"
)

// Batch is one training batch of N (caption, image) pairs for TrainStep,
// handed over chunk by chunk: the callbacks return rows [lo, hi) and may
// reuse one buffer (each result is uploaded before the next call).
type Batch struct {
	N int
	// Tokens returns the token ids of rows [lo, hi) ((hi-lo)·L values).
	Tokens func(lo, hi int) []int32
	// Images returns rows [lo, hi) as decoded images [hi-lo, S, S, 3],
	// normalised on the device with Norm (VisionForwardImages). When nil,
	// Pixels returns them normalised [hi-lo, 3, S, S] (VisionForward).
	Images func(lo, hi int) []uint8
	Norm   *[3][256]float32
	Pixels func(lo, hi int) []float32
	// Dropout returns the seeds of the vision and text towers' dropout
	// masks for the chunk starting at row lo, turning dropout on (the same
	// seeds replay the same masks). Nil leaves the plans' settings as set.
	Dropout func(lo int) (vision, text uint64)
	// Loss computes the loss of the batch's raw embeddings img, txt [N, D]
	// and its gradients.
	Loss func(img, txt []float32, n int) (loss.Result, error)
	// GradScale multiplies the loss's gradients before the backward
	// (1/micro-batches of an accumulated optimizer step); 0 means 1.
	GradScale float32
}

// TrainStep runs training batches through a pair of training plans:
// forward both towers, the loss on the host, backward, accumulating every
// trainable parameter's gradient (one micro-batch: zeroing the gradients
// and the optimizer step are the caller's). A batch larger than the plans
// runs as GradCache: every chunk is embedded first, keeping no activations
// beyond one chunk's; the loss and its embedding gradients are computed
// over the whole batch; then each chunk is forwarded again (same dropout
// masks) and backpropagated with its slice of the gradient. The gradients
// equal those of one plain batch.
type TrainStep struct {
	m          *Model
	vp         *VisionPlan
	tp         *TextPlan
	chunk, D   int
	img, txt   []float32   // the batch's embeddings [N, D]
	dImg, dTxt backend.Buf // a chunk's embedding gradients [chunk, D]
}

// NewTrainStep runs training batches on vp and tp (training plans, which
// the caller keeps and frees) in chunks of their batch size.
func (m *Model) NewTrainStep(vp *VisionPlan, tp *TextPlan) (*TrainStep, error) {
	if !vp.Training() || !tp.Training() {
		return nil, fmt.Errorf("model: training step on an inference plan (create it with training=true)")
	}
	s := &TrainStep{m: m, vp: vp, tp: tp, chunk: min(vp.Batch(), tp.Batch()), D: m.cfg.ProjectionDim}
	s.dImg, s.dTxt = m.be.Alloc(s.chunk*s.D), m.be.Alloc(s.chunk*s.D)
	return s, nil
}

// Free releases the step's gradient buffers (not the plans).
func (s *TrainStep) Free() {
	s.m.be.Free(s.dImg)
	s.m.be.Free(s.dTxt)
}

// Forward embeds the batch with both towers, chunk by chunk, and returns
// the raw embeddings img, txt [N, D] (valid until the next call). The
// plans hold the last chunk's activations.
func (s *TrainStep) Forward(b *Batch) (img, txt []float32, err error) {
	if b.N <= 0 {
		return nil, nil, fmt.Errorf("model: training batch of %d pairs", b.N)
	}
	if n := b.N * s.D; cap(s.img) < n {
		s.img, s.txt = make([]float32, n), make([]float32, n)
	}
	for lo := 0; lo < b.N; lo += s.chunk {
		if err := s.forward(b, lo, min(b.N, lo+s.chunk)); err != nil {
			return nil, nil, err
		}
	}
	return s.img[:b.N*s.D], s.txt[:b.N*s.D], nil
}

// forward embeds rows [lo, hi) into s.img and s.txt. The text tower is
// queued first, so that on a GPU the host prepares the images (the larger
// input) while the device runs it; both towers are queued before the
// first download waits.
func (s *TrainStep) forward(b *Batch, lo, hi int) error {
	m, n := s.m, hi-lo
	if b.Dropout != nil {
		v, t := b.Dropout(lo)
		s.vp.SetDropout(true, v)
		s.tp.SetDropout(true, t)
	}
	te, err := m.TextForward(s.tp, b.Tokens(lo, hi), n)
	if err != nil {
		return err
	}
	var ie backend.Buf
	if b.Images != nil {
		ie, err = m.VisionForwardImages(s.vp, b.Images(lo, hi), b.Norm, n)
	} else {
		ie, err = m.VisionForward(s.vp, b.Pixels(lo, hi), n)
	}
	if err != nil {
		return err
	}
	m.be.Download(s.img[lo*s.D:hi*s.D], ie)
	m.be.Download(s.txt[lo*s.D:hi*s.D], te)
	return m.be.Sync()
}

// Run trains on one batch: forward, b.Loss, backward. It accumulates the
// gradients (scaled by b.GradScale, logit_scale's and logit_bias's
// included when they train) and returns the loss's result with its embedding gradients
// scaled.
func (s *TrainStep) Run(b *Batch) (loss.Result, error) {
	img, txt, err := s.Forward(b)
	if err != nil {
		return loss.Result{}, err
	}
	res, err := b.Loss(img, txt, b.N)
	if err != nil {
		return res, err
	}
	g := b.GradScale
	if g == 0 {
		g = 1
	}
	for i := range res.DImg {
		res.DImg[i] *= g
		res.DTxt[i] *= g
	}
	m := s.m
	for lo := 0; lo < b.N; lo += s.chunk {
		hi := min(b.N, lo+s.chunk)
		if s.chunk < b.N {
			// GradCache: this chunk's activations again, with the same masks.
			if err := s.forward(b, lo, hi); err != nil {
				return res, err
			}
		}
		k := (hi - lo) * s.D
		m.be.Upload(s.dImg, res.DImg[lo*s.D:hi*s.D])
		m.be.Upload(s.dTxt, res.DTxt[lo*s.D:hi*s.D])
		if err := m.VisionBackward(s.vp, s.dImg.Slice(0, k)); err != nil {
			return res, err
		}
		if err := m.TextBackward(s.tp, s.dTxt.Slice(0, k)); err != nil {
			return res, err
		}
	}
	m.AddLogitScaleGrad(res.DLogitScale * g)
	m.AddLogitBiasGrad(res.DLogitBias * g) // SigLIP's sigmoid loss; a no-op without logit_bias
	return res, nil
}
