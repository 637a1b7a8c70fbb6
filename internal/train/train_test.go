package train

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/config"
	"github.com/clipline/clipline/internal/loss"
	"github.com/clipline/clipline/internal/metrics"
	"github.com/clipline/clipline/internal/model"
	"github.com/clipline/clipline/internal/safetensors"
)

func readMetrics(t *testing.T, dir string) []Record {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("metrics.jsonl line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// A tiny end-to-end run: the training loss goes down and validation
// retrieval beats chance.
func TestLossGoesDown(t *testing.T) {
	t.Run("clip infonce", func(t *testing.T) { lossGoesDown(t, tinyModelDir(t), nil) })
	// LAION's activation trains as well, and the checkpoint keeps it.
	t.Run("clip gelu infonce", func(t *testing.T) {
		cfg := model.TinyConfig()
		cfg.Text.HiddenAct, cfg.Vision.HiddenAct = "gelu", "gelu"
		res := lossGoesDown(t, modelDir(t, cfg), nil)
		saved, err := model.LoadConfig(filepath.Join(res.FinalDir, "config.json"))
		if err != nil || saved.Text.HiddenAct != "gelu" || saved.Vision.HiddenAct != "gelu" {
			t.Errorf("final checkpoint's hidden_act %q/%q (%v), want gelu", saved.Text.HiddenAct, saved.Vision.HiddenAct, err)
		}
	})
	// SigLIP, sigmoid loss, logit_scale and logit_bias learned: also
	// logit_bias moves from -10, the checkpoint keeps it and metrics.jsonl
	// logs it.
	t.Run("siglip sigmoid", func(t *testing.T) {
		lossGoesDown(t, tinySigLIPDir(t), func(c *config.Config) {
			c.LossType, c.LearnTemperature = "sigmoid", true
		})
	})
}

// lossGoesDown trains 30 epochs of base with the test configuration (set
// changes it) and checks that the loss falls, retrieval is above chance,
// and best/ and final/ are written.
func lossGoesDown(t *testing.T, base string, set func(*config.Config)) *Result {
	out := t.TempDir()
	c := testConfig(base, out)
	c.Epochs = 30
	c.LearningRate = 3e-3
	c.EvalStrategy = "epoch"
	if set != nil {
		set(&c)
	}
	data := synthData(1, 8, 2)
	tr := newTrainer(t, c, base, data, data, "", nil)
	res, err := tr.Run()
	if err != nil {
		t.Fatal(err)
	}
	recs := readMetrics(t, out)
	var losses []float64
	var evals []*metrics.Summary
	var bias *float64
	for _, r := range recs {
		if r.Loss != nil {
			losses = append(losses, *r.Loss)
			bias = r.LogitBias
		}
		if r.Eval != nil {
			evals = append(evals, r.Eval)
		}
	}
	if len(losses) != res.Steps || res.Steps != 60 {
		t.Fatalf("%d loss records, %d steps", len(losses), res.Steps)
	}
	first := (losses[0] + losses[1]) / 2
	last := (losses[len(losses)-1] + losses[len(losses)-2]) / 2
	t.Logf("loss %.4f -> %.4f; t2i R@1 %.3f -> %.3f", first, last, evals[0].T2I.R1, evals[len(evals)-1].T2I.R1)
	if !(last < 0.7*first) {
		t.Errorf("loss did not go down: %.4f -> %.4f", first, last)
	}
	if len(evals) != c.Epochs {
		t.Errorf("%d evaluations, want one per epoch (%d)", len(evals), c.Epochs)
	}
	if fin := evals[len(evals)-1]; !(fin.T2I.R1 > 1.0/8 && fin.I2T.R1 > 1.0/16) {
		t.Errorf("after training retrieval is at chance: %+v", fin)
	}
	if res.BestDir == "" || !(res.BestMetric >= evals[0].T2I.R1) {
		t.Errorf("best %q %.3f", res.BestDir, res.BestMetric)
	}
	for _, d := range []string{res.FinalDir, res.BestDir} {
		if _, err := os.Stat(filepath.Join(d, "model.safetensors")); err != nil {
			t.Error(err)
		}
	}
	if math.IsNaN(res.LastLoss) {
		t.Error("NaN last loss")
	}
	m := tr.Model()
	if !m.HasLogitBias() {
		if bias != nil {
			t.Errorf("CLIP run logged logit_bias %v", *bias)
		}
		return res
	}
	t.Logf("logit_scale %.3f, logit_bias %.3f", m.LogitScale(), m.LogitBias())
	if m.LogitBias() == loss.SigmoidInitLogitBias {
		t.Error("logit_bias did not train")
	}
	if bias == nil || *bias != float64(m.LogitBias()) {
		t.Errorf("metrics.jsonl logit_bias %v, model %v", bias, m.LogitBias())
	}
	f, err := safetensors.Load(filepath.Join(res.FinalDir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float32{"logit_bias": m.LogitBias(), "logit_scale": m.LogitScale()} {
		if v, err := f.Tensors[name].Float32(); err != nil || len(v) != 1 || v[0] != want {
			t.Errorf("final checkpoint %s %v (%v), model %v", name, v, err, want)
		}
	}
	return res
}

// A NaN loss stops the run with an error naming the step, and nothing new
// is written.
func TestNaNStops(t *testing.T) {
	base := tinyModelDir(t)
	out := t.TempDir()
	c := testConfig(base, out)
	c.SaveSteps = 1
	c.SaveStrategy = "steps"
	tr := newTrainer(t, c, base, synthData(1, 8, 2), nil, "", nil)
	p := tr.Model().Param("visual_projection.weight")
	v := make([]float32, p.W.Len())
	tr.be.Download(v, p.W)
	v[3] = float32(math.NaN())
	tr.be.Upload(p.W, v)
	_, err := tr.Run()
	if err == nil || !strings.Contains(err.Error(), "step 1") || !strings.Contains(err.Error(), "NaN") {
		t.Fatalf("want an error naming step 1 and NaN, got %v", err)
	}
	ents, _ := os.ReadDir(out)
	for _, e := range ents {
		if e.Name() != "metrics.jsonl" {
			t.Errorf("%s written after a NaN loss", e.Name())
		}
	}
}

// --from-scratch pretrains from config.json alone: weights are model.New's
// for the configured seed.
func TestFromScratch(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cfgonly")
	os.MkdirAll(dir, 0o755)
	if err := model.SaveConfig(filepath.Join(dir, "config.json"), model.TinyConfig()); err != nil {
		t.Fatal(err)
	}
	c := testConfig(dir, t.TempDir())
	c.UseLoRA = false
	c.Epochs = 1
	data := synthData(2, 8, 2)
	if _, err := New(Options{Config: c, ModelDir: dir, Backend: testBackend(), Train: data}); err == nil {
		t.Fatal("loading a directory without weights succeeded")
	}
	tr, err := New(Options{Config: c, ModelDir: dir, Backend: testBackend(), Train: data, FromScratch: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ref, _ := model.New(model.TinyConfig(), testBackend(), uint64(c.Seed))
	if !reflect.DeepEqual(hostParams(tr.Model()), hostParams(ref)) {
		t.Error("from-scratch weights are not model.New's for the seed")
	}
	res, err := tr.Run()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := model.Load(res.FinalDir, testBackend()); err != nil {
		t.Errorf("final model: %v", err)
	}
}
