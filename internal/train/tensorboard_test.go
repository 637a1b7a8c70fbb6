package train

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/clipline/clipline/internal/tfevents/tbtest"
)

// TestTensorBoard: report_to: tensorboard writes one event file under
// output_dir/runs whose scalars, read by an independent reader, are
// metrics.jsonl's at the same steps.
func TestTensorBoard(t *testing.T) {
	tbtest.Require(t)
	base := tinyModelDir(t)
	out := t.TempDir()
	c := testConfig(base, out)
	c.ReportTo = "tensorboard"
	c.EvalStrategy = "epoch"
	data := synthData(1, 8, 2)
	if _, err := newTrainer(t, c, base, data, data, "", nil).Run(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(out, "runs", "events.out.tfevents.*"))
	if len(files) != 1 {
		t.Fatalf("event files %v, want one", files)
	}
	evs := tbtest.Read(t, files[0])
	recs := readMetrics(t, out)
	if len(evs) != 1+len(recs) || evs[0].FileVersion != "brain.Event:2" {
		t.Fatalf("%d events (first %+v), want the file version and %d records", len(evs), evs[0], len(recs))
	}
	evals := 0
	for i, r := range recs {
		e := evs[i+1]
		if e.Step != int64(r.Step) {
			t.Errorf("event %d at step %d, record at %d", i+1, e.Step, r.Step)
		}
		want := map[string]float64{}
		if r.Loss != nil {
			want = map[string]float64{"loss": *r.Loss, "learning_rate": *r.LR, "grad_norm": *r.GradNorm, "pairs_per_s": *r.PairsPerSec}
		}
		if r.Eval != nil {
			evals++
			want = map[string]float64{"eval/t2i_r1": r.Eval.T2I.R1, "eval/i2t_r5": r.Eval.I2T.R5, "eval/rsum": r.Eval.RSum}
		}
		for tag, w := range want {
			got, ok := e.Value(tag)
			if d := got - w; !ok || !(d <= 1e-6*(1+w) && -d <= 1e-6*(1+w)) {
				t.Errorf("step %d %s = %v (%v), want %v", r.Step, tag, got, ok, w)
			}
		}
	}
	if evals != c.Epochs {
		t.Errorf("%d validations, want %d", evals, c.Epochs)
	}
	// --overwrite removes the event files with the rest of the run.
	c.OverwriteOutputDir = true
	if err := CheckOutputDir(c, "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "runs")); !os.IsNotExist(err) {
		t.Errorf("runs/ after --overwrite: %v", err)
	}
}
