package train

import (
	"fmt"
	"math"
	"time"

	"github.com/clipline/clipline/internal/metrics"
	"github.com/clipline/clipline/internal/model"
)

// Directional holds one direction's retrieval metrics (fractions in [0,1]).
type Directional struct {
	R1     float64 `json:"r1"`
	R5     float64 `json:"r5"`
	R10    float64 `json:"r10"`
	MRR    float64 `json:"mrr"`
	NDCG10 float64 `json:"ndcg10"`
}

// EvalMetrics is one validation: text-to-image and image-to-text retrieval
// over the validation split.
type EvalMetrics struct {
	T2I     Directional `json:"t2i"`
	I2T     Directional `json:"i2t"`
	RSum    float64     `json:"rsum"`
	Images  int         `json:"images"`
	Queries int         `json:"queries"`
}

// evaluate embeds the validation split, prints the table, records the
// metrics and saves output_dir/best when t2i R@1 improves (ties: keep the
// earlier model).
func (t *Trainer) evaluate() error {
	em, err := t.Evaluate(t.o.Val)
	if err != nil {
		return fmt.Errorf("train: validation at step %d: %w", t.step, err)
	}
	fmt.Fprintf(t.log, "validation at step %d (epoch %.2f), %d images, %d captions:\n%s", t.step, t.epochFloat(),
		em.Images, em.Queries, em.Table())
	t.record(Record{Step: t.step, Epoch: t.epochFloat(), Eval: em, ElapsedSec: time.Since(t.started).Seconds()})
	if t.best == nil || em.T2I.R1 > *t.best {
		b := em.T2I.R1
		t.best, t.bestStep = &b, t.step
		t.bestCkpt = ""
		if every := t.cfg.SaveEvery(); (every > 0 && t.step%every == 0) || (every == 0 && t.step%t.spe == 0) {
			t.bestCkpt = fmt.Sprintf(checkpointFmt, t.step)
		}
		if err := t.saveBest(em); err != nil {
			return err
		}
		fmt.Fprintf(t.log, "train: new best t2i R@1 %.4f, saved %s\n", b, t.bestDir)
	}
	return nil
}

// Table renders the metrics as the rank stage does.
func (e *EvalMetrics) Table() string {
	s := fmt.Sprintf("  %-4s %7s %7s %7s %7s %7s\n", "", "R@1", "R@5", "R@10", "MRR", "NDCG@10")
	for _, r := range []struct {
		n string
		d Directional
	}{{"t2i", e.T2I}, {"i2t", e.I2T}} {
		s += fmt.Sprintf("  %-4s %7.2f %7.2f %7.2f %7.4f %7.4f\n", r.n, 100*r.d.R1, 100*r.d.R5, 100*r.d.R10, r.d.MRR, r.d.NDCG10)
	}
	return s + fmt.Sprintf("  rsum %.2f\n", e.RSum)
}

// Evaluate embeds every image and caption of d with the current weights
// (inference plans, no dropout) and computes retrieval metrics in both
// directions. A caption is relevant to every image that has the same caption
// text (multi-positive); an image's relevant captions are its own.
func (t *Trainer) Evaluate(d *Data) (*EvalMetrics, error) {
	imgEmb, txtEmb, err := Embed(t.m, &t.norm, d, t.cfg.BatchSize)
	if err != nil {
		return nil, err
	}
	return retrieval(d, imgEmb, txtEmb, t.D)
}

// Embed returns the L2-normalised embeddings of d's images [Images, D] and
// captions [Pairs, D], in batches of b with inference plans; norm is the
// model's input normalisation (imageproc.Config.LUT).
func Embed(m *model.Model, norm *[3][256]float32, d *Data, b int) (img, txt []float32, err error) {
	mc := m.Config()
	D, side := mc.ProjectionDim, mc.Vision.ImageSize
	be := m.Backend()
	per := 3 * side * side
	vp := m.NewVisionPlan(min(b, max(1, d.Images())), false)
	defer vp.Free()
	tp := m.NewTextPlan(min(b, max(1, d.Pairs())), false)
	defer tp.Free()
	img = make([]float32, d.Images()*D)
	txt = make([]float32, d.Pairs()*D)
	pix := make([]uint8, vp.Batch()*per)
	for lo := 0; lo < d.Images(); lo += vp.Batch() {
		hi := min(d.Images(), lo+vp.Batch())
		for i := lo; i < hi; i++ {
			copy(pix[(i-lo)*per:(i-lo+1)*per], d.Image(i))
		}
		e, err := m.VisionForwardImages(vp, pix[:(hi-lo)*per], norm, hi-lo)
		if err != nil {
			return nil, nil, err
		}
		be.Download(img[lo*D:hi*D], e)
	}
	for lo := 0; lo < d.Pairs(); lo += tp.Batch() {
		hi := min(d.Pairs(), lo+tp.Batch())
		e, err := m.TextForward(tp, d.Tokens[lo*d.Context:hi*d.Context], hi-lo)
		if err != nil {
			return nil, nil, err
		}
		be.Download(txt[lo*D:hi*D], e)
	}
	if err := be.Sync(); err != nil {
		return nil, nil, err
	}
	l2normalize(img, D)
	l2normalize(txt, D)
	return img, txt, nil
}

func l2normalize(x []float32, D int) {
	for r := 0; r+D <= len(x); r += D {
		var s float64
		for _, v := range x[r : r+D] {
			s += float64(v) * float64(v)
		}
		if s == 0 {
			continue
		}
		inv := float32(1 / math.Sqrt(s))
		for i := r; i < r+D; i++ {
			x[i] *= inv
		}
	}
}

// retrieval ranks with internal/metrics, the rank stage's code: a caption
// is relevant to every image whose captions hold the same text; an image's
// relevant captions are its own; ties go to the lower gallery row.
func retrieval(d *Data, img, txt []float32, D int) (*EvalMetrics, error) {
	// metrics.SingleStream numbers captions in row order; Data keeps each
	// image's pairs together, images in row order.
	caps := make([][]string, d.Images())
	for q, i := range d.PairImage {
		if q > 0 && i < d.PairImage[q-1] {
			return nil, fmt.Errorf("%s: pairs are not grouped by image in row order", d.Name)
		}
		caps[i] = append(caps[i], d.Captions[q])
	}
	t2i, i2t := metrics.SingleStream(caps)
	r, err := metrics.Rank(metrics.Input{Dim: D, Captions: txt, Images: img, T2I: t2i, I2T: i2t}, metrics.Options{})
	if err != nil {
		return nil, err
	}
	dir := func(x metrics.Direction) Directional {
		return Directional{R1: x.R1, R5: x.R5, R10: x.R10, MRR: x.MRR, NDCG10: x.NDCG10}
	}
	return &EvalMetrics{T2I: dir(r.T2I), I2T: dir(r.I2T), RSum: 100 * r.RSum(), Images: d.Images(), Queries: d.Pairs()}, nil
}
