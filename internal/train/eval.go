package train

import (
	"fmt"
	"math"
	"time"

	"github.com/clipline/clipline/internal/model"
)

// Directional holds one direction's retrieval metrics (fractions in [0,1]).
type Directional struct {
	R1  float64 `json:"r1"`
	R5  float64 `json:"r5"`
	R10 float64 `json:"r10"`
	MRR float64 `json:"mrr"`
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
	s := fmt.Sprintf("  %-4s %7s %7s %7s %7s\n", "", "R@1", "R@5", "R@10", "MRR")
	for _, r := range []struct {
		n string
		d Directional
	}{{"t2i", e.T2I}, {"i2t", e.I2T}} {
		s += fmt.Sprintf("  %-4s %7.2f %7.2f %7.2f %7.4f\n", r.n, 100*r.d.R1, 100*r.d.R5, 100*r.d.R10, r.d.MRR)
	}
	return s + fmt.Sprintf("  rsum %.2f\n", e.RSum)
}

// Evaluate embeds every image and caption of d with the current weights
// (inference plans, no dropout) and computes retrieval metrics in both
// directions. A caption is relevant to every image that has the same caption
// text (multi-positive); an image's relevant captions are its own.
func (t *Trainer) Evaluate(d *Data) (*EvalMetrics, error) {
	imgEmb, txtEmb, err := Embed(t.m, t.pre.Normalize, d, t.cfg.BatchSize)
	if err != nil {
		return nil, err
	}
	return retrieval(d, imgEmb, txtEmb, t.D), nil
}

// Embed returns the L2-normalised embeddings of d's images [Images, D] and
// captions [Pairs, D], in batches of b with inference plans.
func Embed(m *model.Model, normalize func(dst []float32, hwc []byte), d *Data, b int) (img, txt []float32, err error) {
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
	pix := make([]float32, vp.Batch()*per)
	for lo := 0; lo < d.Images(); lo += vp.Batch() {
		hi := min(d.Images(), lo+vp.Batch())
		for i := lo; i < hi; i++ {
			normalize(pix[(i-lo)*per:(i-lo+1)*per], d.Image(i))
		}
		e, err := m.VisionForward(vp, pix[:(hi-lo)*per], hi-lo)
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

// retrieval computes R@1/5/10 and MRR both ways from normalised embeddings.
// Ties are broken by gallery order (a relevant item ranks first among
// equals only if it comes first), as the rank stage does.
func retrieval(d *Data, img, txt []float32, D int) *EvalMetrics {
	nI, nQ := d.Images(), d.Pairs()
	// Multi-positive relevance: images holding each caption text.
	byText := map[string][]int32{}
	for q := 0; q < nQ; q++ {
		byText[d.Captions[q]] = appendUnique(byText[d.Captions[q]], d.PairImage[q])
	}
	em := &EvalMetrics{Images: nI, Queries: nQ}
	scores := make([]float32, max(nI, nQ))
	acc := func(dst *Directional, rank int) {
		if rank < 1 {
			dst.R1++
		}
		if rank < 5 {
			dst.R5++
		}
		if rank < 10 {
			dst.R10++
		}
		dst.MRR += 1 / float64(rank+1)
	}
	rel := make([]bool, max(nI, nQ))
	for q := 0; q < nQ; q++ {
		for i := 0; i < nI; i++ {
			scores[i] = dot(txt[q*D:(q+1)*D], img[i*D:(i+1)*D])
		}
		for _, i := range byText[d.Captions[q]] {
			rel[i] = true
		}
		acc(&em.T2I, firstRelevantRank(scores[:nI], rel[:nI]))
		for _, i := range byText[d.Captions[q]] {
			rel[i] = false
		}
	}
	own := make([][]int, nI)
	for q := 0; q < nQ; q++ {
		own[d.PairImage[q]] = append(own[d.PairImage[q]], q)
	}
	withCaps := 0
	for i := 0; i < nI; i++ {
		if len(own[i]) == 0 {
			continue // an image without captions has nothing to retrieve
		}
		withCaps++
		for q := 0; q < nQ; q++ {
			scores[q] = dot(img[i*D:(i+1)*D], txt[q*D:(q+1)*D])
		}
		for _, q := range own[i] {
			rel[q] = true
		}
		acc(&em.I2T, firstRelevantRank(scores[:nQ], rel[:nQ]))
		for _, q := range own[i] {
			rel[q] = false
		}
	}
	div := func(x *Directional, n int) {
		if n == 0 {
			return
		}
		f := float64(n)
		x.R1, x.R5, x.R10, x.MRR = x.R1/f, x.R5/f, x.R10/f, x.MRR/f
	}
	div(&em.T2I, nQ)
	div(&em.I2T, withCaps)
	em.RSum = 100 * (em.T2I.R1 + em.T2I.R5 + em.T2I.R10 + em.I2T.R1 + em.I2T.R5 + em.I2T.R10)
	return em
}

// firstRelevantRank is the 0-based rank of the best-ranked relevant item:
// the number of items that beat it (higher score, or equal score earlier).
func firstRelevantRank(scores []float32, rel []bool) int {
	best := -1
	for i, r := range rel {
		if r && (best < 0 || scores[i] > scores[best]) {
			best = i
		}
	}
	if best < 0 {
		return len(scores)
	}
	rank := 0
	for i, s := range scores {
		if s > scores[best] || (s == scores[best] && i < best) {
			rank++
		}
	}
	return rank
}

func dot(a, b []float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func appendUnique(xs []int32, x int32) []int32 {
	for _, y := range xs {
		if y == x {
			return xs
		}
	}
	return append(xs, x)
}
