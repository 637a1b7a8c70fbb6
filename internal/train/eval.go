package train

import (
	"fmt"
	"time"

	"github.com/clipline/clipline/internal/embed"
	"github.com/clipline/clipline/internal/imageproc"
	"github.com/clipline/clipline/internal/metrics"
	"github.com/clipline/clipline/internal/model"
)

// evaluate embeds the validation split, prints the table, records the
// metrics and saves output_dir/best when t2i R@1 improves (ties: keep the
// earlier model).
func (t *Trainer) evaluate() error {
	em, err := t.Evaluate(t.o.Val)
	if err != nil {
		return fmt.Errorf("train: validation at step %d: %w", t.step, err)
	}
	fmt.Fprintf(t.log, "validation at step %d (epoch %.2f), %d images, %d captions:\n", t.step, t.epochFloat(), em.Images, em.Queries)
	em.Table(t.log)
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

// Evaluate embeds every image and caption of d with the current weights
// (inference plans, no dropout) and computes retrieval metrics in both
// directions. A caption is relevant to every image that has the same caption
// text (multi-positive); an image's relevant captions are its own.
func (t *Trainer) Evaluate(d *Data) (*metrics.Summary, error) {
	imgEmb, txtEmb, err := Embed(t.m, t.pre, d, t.cfg.BatchSize)
	if err != nil {
		return nil, err
	}
	return retrieval(d, imgEmb, txtEmb, t.D)
}

// Embed returns the embeddings of d's images [Images, D] and captions
// [Pairs, D] as the embed stage computes them (L2-normalised), with
// inference plans of up to b rows; pre is the model's preprocessing.
func Embed(m *model.Model, pre imageproc.Config, d *Data, b int) (img, txt []float32, err error) {
	// One batch size for both towers, chunking each as a plan of
	// min(b, its count) would.
	e, err := embed.New(m, pre, embed.Options{BatchSize: min(b, max(1, d.Images(), d.Pairs()))})
	if err != nil {
		return nil, nil, err
	}
	defer e.FreePlans()
	B, D, per := e.BatchSize(), e.Dim(), 3*d.Side*d.Side
	img = make([]float32, d.Images()*D)
	pix := make([]uint8, B*per)
	for lo := 0; lo < d.Images(); lo += B {
		hi := min(d.Images(), lo+B)
		for i := lo; i < hi; i++ {
			copy(pix[(i-lo)*per:(i-lo+1)*per], d.Image(i))
		}
		if err := e.ImageBatch(img[lo*D:hi*D], pix[:(hi-lo)*per], hi-lo); err != nil {
			return nil, nil, err
		}
	}
	txt = make([]float32, d.Pairs()*D)
	if err := e.Texts(txt, d.Tokens, d.Context, d.Pairs()); err != nil {
		return nil, nil, err
	}
	if err := m.Backend().Sync(); err != nil {
		return nil, nil, err
	}
	return img, txt, nil
}

// retrieval ranks with internal/metrics, the rank stage's code: a caption
// is relevant to every image whose captions hold the same text; an image's
// relevant captions are its own; ties go to the lower gallery row.
func retrieval(d *Data, img, txt []float32, D int) (*metrics.Summary, error) {
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
	sum := r.Summary(d.Images(), d.Pairs())
	return &sum, nil
}
