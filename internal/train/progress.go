package train

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/clipline/clipline/internal/metrics"
	"github.com/clipline/clipline/internal/tfevents"
)

// Record is one line of output_dir/metrics.jsonl: a logging step (loss,
// learning rate, ...) or a validation (Eval).
type Record struct {
	Step        int              `json:"step"`
	Epoch       float64          `json:"epoch"`
	Loss        *float64         `json:"loss,omitempty"`
	LR          *float64         `json:"learning_rate,omitempty"`
	GradNorm    *float64         `json:"grad_norm,omitempty"`
	LogitScale  *float64         `json:"logit_scale,omitempty"`
	LogitBias   *float64         `json:"logit_bias,omitempty"` // sigmoid loss
	PairsPerSec *float64         `json:"pairs_per_s,omitempty"`
	Eval        *metrics.Summary `json:"eval,omitempty"`
	ElapsedSec  float64          `json:"elapsed_s"`
}

// window accumulates the steps since the last log line.
type window struct {
	start    time.Time
	steps    int
	lossSum  float64
	normSum  float64
	lastLR   float64
	pairs    int
	lastMean float64
}

func (w *window) reset(now time.Time) {
	w.start, w.steps, w.lossSum, w.normSum, w.pairs = now, 0, 0, 0, 0
}

func (w *window) add(loss, norm, lr float64, pairs int) {
	w.steps++
	w.lossSum += loss
	w.normSum += norm
	w.lastLR = lr
	w.pairs += pairs
}

// logTrain prints the progress line and appends a metrics record.
func (t *Trainer) logTrain() {
	w := &t.win
	if w.steps == 0 {
		return
	}
	now := time.Now()
	el := now.Sub(w.start).Seconds()
	mean := w.lossSum / float64(w.steps)
	w.lastMean = mean
	norm := w.normSum / float64(w.steps)
	lr := w.lastLR
	pps := float64(w.pairs) / math.Max(el, 1e-9)
	r := Record{Step: t.step, Epoch: t.epochFloat(), Loss: &mean, LR: &lr, GradNorm: &norm, PairsPerSec: &pps,
		ElapsedSec: now.Sub(t.started).Seconds()}
	extra := ""
	if t.learn {
		ls := float64(t.m.LogitScale())
		r.LogitScale = &ls
		extra = fmt.Sprintf(" scale %.2f", math.Exp(ls))
	}
	if t.sigmoid {
		lb := float64(t.m.LogitBias())
		r.LogitBias = &lb
		extra += fmt.Sprintf(" bias %.2f", lb)
	}
	// ETA from this process's average step time.
	eta := time.Duration(float64(now.Sub(t.started)) / float64(max(1, t.stepsRun)) * float64(t.total-t.step))
	fmt.Fprintf(t.log, "train: step %d/%d epoch %.2f/%d loss %.4f lr %.3g grad_norm %.3g%s pairs/s %.1f ETA %s\n",
		t.step, t.total, t.epochFloat(), t.epochs, mean, lr, norm, extra, pps, fmtDur(eta))
	t.record(r)
	w.reset(now)
}

func (t *Trainer) epochFloat() float64 { return float64(t.step) / float64(t.spe) }

// record keeps r in the history (saved in trainer state) and appends it to
// metrics.jsonl.
func (t *Trainer) record(r Record) {
	t.history = append(t.history, r)
	if t.metricsOut == nil {
		return
	}
	b, err := json.Marshal(r)
	if err == nil {
		_, err = t.metricsOut.Write(append(b, '\n'))
	}
	if err != nil {
		fmt.Fprintf(t.log, "warning: writing metrics.jsonl: %v\n", err)
	}
	if t.tb != nil {
		if err := t.tb.Scalars(int64(r.Step), time.Now(), r.scalars()); err != nil {
			fmt.Fprintf(t.log, "warning: %v\n", err)
		}
	}
}

// scalars are r's values under metrics.jsonl's names, validation metrics
// as eval/t2i_r1 etc.
func (r Record) scalars() []tfevents.Scalar {
	var out []tfevents.Scalar
	for _, v := range []struct {
		tag string
		p   *float64
	}{{"loss", r.Loss}, {"learning_rate", r.LR}, {"grad_norm", r.GradNorm}, {"logit_scale", r.LogitScale}, {"logit_bias", r.LogitBias}, {"pairs_per_s", r.PairsPerSec}} {
		if v.p != nil {
			out = append(out, tfevents.Scalar{Tag: v.tag, Value: *v.p})
		}
	}
	if e := r.Eval; e != nil {
		for _, d := range []struct {
			name string
			s    metrics.Scores
		}{{"t2i", e.T2I}, {"i2t", e.I2T}} {
			out = append(out,
				tfevents.Scalar{Tag: "eval/" + d.name + "_r1", Value: d.s.R1},
				tfevents.Scalar{Tag: "eval/" + d.name + "_r5", Value: d.s.R5},
				tfevents.Scalar{Tag: "eval/" + d.name + "_r10", Value: d.s.R10},
				tfevents.Scalar{Tag: "eval/" + d.name + "_mrr", Value: d.s.MRR},
				tfevents.Scalar{Tag: "eval/" + d.name + "_ndcg10", Value: d.s.NDCG10})
		}
		out = append(out, tfevents.Scalar{Tag: "eval/rsum", Value: e.RSum})
	}
	return out
}

// openMetrics (re)writes output_dir/metrics.jsonl from the history: fresh
// runs start empty; resumed runs keep exactly the records up to the
// checkpoint, so lines from the interrupted tail do not appear twice.
func (t *Trainer) openMetrics() error {
	p := filepath.Join(t.cfg.OutputDir, "metrics.jsonl")
	f, err := os.Create(p)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	for _, r := range t.history {
		b, _ := json.Marshal(r)
		if _, err := f.Write(append(b, '\n')); err != nil {
			f.Close()
			return fmt.Errorf("train: %s: %w", p, err)
		}
	}
	t.metricsOut = f
	if t.cfg.TensorBoard() {
		// A new file per process: on resume TensorBoard drops the earlier
		// file's steps past the checkpoint when this one restarts there.
		w, err := tfevents.Create(filepath.Join(t.cfg.OutputDir, "runs"), time.Now())
		if err != nil {
			return fmt.Errorf("train: report_to tensorboard: %w", err)
		}
		t.tb = w
	}
	return nil
}

func fmtDur(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Round(time.Second)
	h := int(d / time.Hour)
	m := int(d/time.Minute) % 60
	s := int(d/time.Second) % 60
	if h > 0 {
		return fmt.Sprintf("%dh%02dm", h, m)
	}
	if m > 0 {
		return fmt.Sprintf("%dm%02ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}
