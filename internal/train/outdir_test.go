package train

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/config"
	"github.com/clipline/clipline/internal/optim"
)

func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// smallRun is the tiny model, 12 pairs and a configuration of 3 steps an
// epoch (batch 4) into a fresh output_dir.
func smallRun(t *testing.T) (base string, data *Data, c config.Config) {
	base = tinyModelDir(t)
	c = testConfig(base, t.TempDir())
	c.BatchSize = 4
	return base, synthData(3, 6, 2), c
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one with %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q lacks %q", err, p)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
}

// A non-empty output_dir is refused unless the run resumes from it or
// overwrites it; the error names the directory and the ways out.
func TestOutputDirRefusal(t *testing.T) {
	base, data, c := smallRun(t)
	out := c.OutputDir
	c.SaveStrategy, c.SaveSteps = "steps", 2
	c.Epochs = 1 // checkpoint-2, final
	if _, err := newTrainer(t, c, base, data, nil, "", nil).Run(); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, out); !reflect.DeepEqual(got, []string{"checkpoint-2", "final", "metrics.jsonl"}) {
		t.Fatalf("first run wrote %v", got)
	}
	mk := func(c Options) error {
		c.ModelDir, c.Backend, c.Train = base, testBackend(), data
		tr, err := New(c)
		if err == nil {
			tr.Close()
		}
		return err
	}
	// The same configuration, finished: run again only with --overwrite.
	wantErr(t, mk(Options{Config: c}), "output_dir "+out, "finished run of this configuration", "--overwrite", "another --out")
	// Another configuration.
	c2 := c
	c2.Epochs = 2
	wantErr(t, mk(Options{Config: c2}), "output_dir "+out, "another configuration (epochs 1 there, 2 here)", "--overwrite", "another --out")
	// Unfinished (final/ gone, as after a crash): --resume the newest checkpoint.
	os.RemoveAll(filepath.Join(out, "final"))
	wantErr(t, mk(Options{Config: c}), "unfinished run of this configuration", "--resume "+filepath.Join(out, "checkpoint-2"), "--overwrite")
	// Keys that do not change the weights are the same run.
	c3 := c
	c3.LoggingSteps, c3.SaveTotalLimit = 5, 3
	wantErr(t, mk(Options{Config: c3}), "unfinished run of this configuration")
	// --resume from inside output_dir is allowed.
	if err := mk(Options{Config: c, Resume: filepath.Join(out, "checkpoint-2")}); err != nil {
		t.Errorf("resume inside output_dir: %v", err)
	}
	// --resume of another run's checkpoint into this one is not.
	other := t.TempDir()
	co := c
	co.OutputDir = other
	if _, err := newTrainer(t, co, base, data, nil, "", nil).Run(); err != nil {
		t.Fatal(err)
	}
	wantErr(t, mk(Options{Config: c, Resume: filepath.Join(other, "checkpoint-2")}), "output_dir "+out, "holds another run", "--overwrite")
	// --overwrite and --resume of a checkpoint it would remove.
	cw := c
	cw.OverwriteOutputDir = true
	wantErr(t, mk(Options{Config: cw, Resume: filepath.Join(out, "checkpoint-2")}), "--overwrite would remove", "drop one")

	// Files clipline did not write.
	foreign := t.TempDir()
	os.WriteFile(filepath.Join(foreign, "notes.txt"), []byte("mine"), 0o644)
	cf := c
	cf.OutputDir = foreign
	wantErr(t, mk(Options{Config: cf}), "output_dir "+foreign, "not empty (notes.txt)", "holds no clipline run", "--overwrite", "another --out")
	// --overwrite keeps them; a foreign entry the run would replace is refused.
	cf.OverwriteOutputDir = true
	os.MkdirAll(filepath.Join(foreign, "final"), 0o755)
	wantErr(t, mk(Options{Config: cf}), "final was not written by clipline", "move it away")
	os.Remove(filepath.Join(foreign, "final"))
	if _, err := newTrainer(t, cf, base, data, nil, "", nil).Run(); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, foreign); !reflect.DeepEqual(got, []string{"checkpoint-2", "final", "metrics.jsonl", "notes.txt"}) {
		t.Errorf("--overwrite into a dir with notes.txt: %v", got)
	}
}

// --overwrite removes the earlier run's files, so a shorter re-run leaves
// no stale checkpoint beside its own, and metrics.jsonl is its alone.
func TestOverwrite(t *testing.T) {
	base, data, c := smallRun(t)
	out := c.OutputDir
	c.Epochs = 3 // 9 steps
	c.SaveStrategy, c.SaveSteps = "steps", 4
	if _, err := newTrainer(t, c, base, data, nil, "", nil).Run(); err != nil {
		t.Fatal(err)
	}
	// A leftover temporary of an interrupted save is the run's too.
	os.MkdirAll(filepath.Join(out, tmpPrefix+"checkpoint-9-123"), 0o755)
	c.Epochs, c.OverwriteOutputDir = 2, true // 6 steps
	var log strings.Builder
	if _, err := newTrainer(t, c, base, data, nil, "", &log).Run(); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, out); !reflect.DeepEqual(got, []string{"checkpoint-4", "final", "metrics.jsonl"}) {
		t.Errorf("after --overwrite: %v", got)
	}
	if recs := readMetrics(t, out); len(recs) != 6 || recs[5].Step != 6 {
		t.Errorf("metrics.jsonl has %d records (last %+v), want the new run's 6", len(recs), recs[len(recs)-1])
	}
	if !strings.Contains(log.String(), "train: --overwrite: removed the earlier run's") {
		t.Errorf("no --overwrite note:\n%s", log.String())
	}
}

// save_total_limit keeps the newest checkpoints; best/ and final/ stay.
func TestSaveTotalLimit(t *testing.T) {
	base, data, c := smallRun(t)
	out := c.OutputDir
	c.Epochs = 2 // 6 steps
	c.SaveStrategy, c.SaveSteps, c.SaveTotalLimit = "steps", 1, 2
	c.EvalStrategy = "epoch"
	c.LearningRate = 0 // validation never improves after the first: best/ is step 3's
	res, err := newTrainer(t, c, base, data, data, "", nil).Run()
	if err != nil {
		t.Fatal(err)
	}
	if got := entries(t, out); !reflect.DeepEqual(got, []string{"best", "checkpoint-5", "checkpoint-6", "final", "metrics.jsonl"}) {
		t.Errorf("save_total_limit 2 left %v", got)
	}
	if res.BestStep != 3 {
		t.Errorf("best at step %d, want 3 (its checkpoint was pruned, best/ kept)", res.BestStep)
	}
}

// max_steps ends the run after N optimizer steps, mid-epoch, and the
// schedule spans N steps.
func TestMaxSteps(t *testing.T) {
	base, data, c := smallRun(t)
	out := c.OutputDir
	c.Epochs, c.MaxSteps = 1, 5
	c.SchedulerType, c.WarmupSteps = "linear", 1
	c.SaveStrategy = "epoch"
	tr := newTrainer(t, c, base, data, nil, "", nil)
	if tr.TotalSteps() != 5 {
		t.Fatalf("TotalSteps %d, want max_steps 5", tr.TotalSteps())
	}
	res, err := tr.Run()
	if err != nil {
		t.Fatal(err)
	}
	recs := readMetrics(t, out)
	if res.Steps != 5 || len(recs) != 5 {
		t.Fatalf("%d steps, %d records; want 5", res.Steps, len(recs))
	}
	want, _ := optim.NewSchedule("linear", c.LearningRate, 1, 5)
	for i, r := range recs {
		if r.Step != i+1 || r.LR == nil || *r.LR != want.LR(i) {
			t.Errorf("record %d: step %d lr %v, want step %d lr %v", i, r.Step, r.LR, i+1, want.LR(i))
		}
	}
	if !(*recs[4].LR > 0) || !(recs[4].Epoch > 1 && recs[4].Epoch < 2) {
		t.Errorf("last step: lr %v epoch %v (want a linear decay to 0 at step 5, mid-epoch 2)", *recs[4].LR, recs[4].Epoch)
	}
	// Epoch-end checkpoints: at each epoch's end and where max_steps ends.
	if got := entries(t, out); !reflect.DeepEqual(got, []string{"checkpoint-3", "checkpoint-5", "final", "metrics.jsonl"}) {
		t.Errorf("output_dir %v", got)
	}
}

// save_only_model checkpoints hold the model but no optimizer state, and
// --resume from one says why it cannot.
func TestSaveOnlyModel(t *testing.T) {
	base, data, c := smallRun(t)
	out := c.OutputDir
	c.Epochs = 1
	c.SaveStrategy, c.SaveOnlyModel = "epoch", true
	if _, err := newTrainer(t, c, base, data, nil, "", nil).Run(); err != nil {
		t.Fatal(err)
	}
	ck := filepath.Join(out, "checkpoint-3")
	for _, f := range []string{"model.safetensors", "adapter/adapter_model.safetensors", StateFile, ConfigFile} {
		if _, err := os.Stat(filepath.Join(ck, f)); err != nil {
			t.Errorf("checkpoint lacks %s", f)
		}
	}
	for _, f := range []string{OptimizerFile, TrainableFile} {
		if _, err := os.Stat(filepath.Join(ck, f)); err == nil {
			t.Errorf("save_only_model checkpoint holds %s", f)
		}
	}
	c.OutputDir = t.TempDir()
	_, err := New(Options{Config: c, ModelDir: base, Backend: testBackend(), Train: data, Resume: ck})
	wantErr(t, err, ck, "save_only_model", "cannot be resumed", "--model "+ck)
	// The unfinished run's output_dir says so too.
	os.RemoveAll(filepath.Join(out, "final"))
	c.OutputDir = out
	_, err = New(Options{Config: c, ModelDir: base, Backend: testBackend(), Train: data})
	wantErr(t, err, "no optimizer state (save_only_model)", "--overwrite")
}

// Options.Stop ends the run after the current step with a resumable
// checkpoint (optimizer state even with save_only_model), and resuming
// from it ends exactly as an uninterrupted run.
func TestStopAndResume(t *testing.T) {
	base := tinyModelDir(t)
	data := synthData(9, 7, 2)
	mk := func(out string) Options {
		c := testConfigFor(base, out, true)
		c.SaveStrategy, c.SaveOnlyModel = "epoch", true
		return Options{Config: c, ModelDir: base, Backend: testBackend(), Train: data, Val: data}
	}
	outA := t.TempDir()
	a, err := New(mk(outA))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Run(); err != nil {
		t.Fatal(err)
	}

	// Stop is cancelled during step 3 (mid-epoch 2): the log line of a step
	// is written after it.
	outB := t.TempDir()
	o := mk(outB)
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("test stop")
	o.Stop = ctx
	o.Log = onLine("train: step 3/", func() { cancel(cause) })
	b, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = b.Run()
	var ie *Interrupted
	if !errors.As(err, &ie) || !errors.Is(err, cause) {
		t.Fatalf("want an *Interrupted wrapping the cause, got %v", err)
	}
	ck := filepath.Join(outB, "checkpoint-3")
	if ie.Step != 3 || ie.Checkpoint != ck {
		t.Errorf("interrupted at step %d in %s, want 3 in %s", ie.Step, ie.Checkpoint, ck)
	}
	wantErr(t, err, "test stop after step 3/6", "checkpoint in "+ck, "--resume "+ck)
	if _, err := os.Stat(filepath.Join(ck, OptimizerFile)); err != nil {
		t.Errorf("the interruption's checkpoint is not resumable: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outB, "final")); err == nil {
		t.Error("an interrupted run wrote final/")
	}

	o = mk(outB)
	o.Resume = ck
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Run(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"final/model.safetensors", "final/adapter/adapter_model.safetensors", "best/model.safetensors", "checkpoint-4/model.safetensors"} {
		wa, err1 := os.ReadFile(filepath.Join(outA, f))
		wb, err2 := os.ReadFile(filepath.Join(outB, f))
		if err1 != nil || err2 != nil || string(wa) != string(wb) {
			t.Errorf("%s differs between the uninterrupted and the resumed run (%v, %v)", f, err1, err2)
		}
	}
	ra, rb := readMetrics(t, outA), readMetrics(t, outB)
	if len(ra) != len(rb) {
		t.Fatalf("metrics.jsonl: %d records uninterrupted, %d resumed", len(ra), len(rb))
	}
	for i := range ra {
		if ra[i].Step != rb[i].Step || !reflect.DeepEqual(ra[i].Loss, rb[i].Loss) || !reflect.DeepEqual(ra[i].Eval, rb[i].Eval) {
			t.Errorf("record %d: %+v vs %+v", i, ra[i], rb[i])
		}
	}
}

// onLine is a log that calls f once a line starting with prefix is written.
func onLine(prefix string, f func()) *lineHook {
	return &lineHook{prefix: prefix, f: f}
}

type lineHook struct {
	prefix string
	f      func()
	done   bool
}

func (h *lineHook) Write(p []byte) (int, error) {
	if !h.done && strings.HasPrefix(string(p), h.prefix) {
		h.done = true
		h.f()
	}
	return len(p), nil
}
