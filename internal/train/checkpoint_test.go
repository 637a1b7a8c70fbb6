package train

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/config"
	"github.com/clipline/clipline/internal/model"
	"github.com/clipline/clipline/internal/safetensors"
)

// A run resumed from a mid-epoch checkpoint ends with exactly the weights
// of an uninterrupted run (LoRA with dropout, learned temperature, gradient
// accumulation with a short last group, warmup + cosine; and full
// fine-tuning).
func TestResumeMatchesUninterrupted(t *testing.T) {
	base := tinyModelDir(t)
	data := synthData(9, 7, 2) // 14 pairs: batches 4,4,4,2 -> groups [3,1]: 2 steps per epoch
	for _, lora := range []bool{true, false} {
		t.Run(fmt.Sprintf("lora=%v", lora), func(t *testing.T) {
			mk := func(out string) config.Config { return testConfigFor(base, out, lora) }
			outA := t.TempDir()
			a := newTrainer(t, mk(outA), base, data, data, "", nil)
			if _, err := a.Run(); err != nil {
				t.Fatal(err)
			}
			want := hostParams(a.Model())

			// Resume from step 3 (mid-epoch 2) into another output dir.
			ck := filepath.Join(outA, "checkpoint-3")
			outB := t.TempDir()
			b := newTrainer(t, mk(outB), base, data, data, ck, nil)
			if b.Step() != 3 {
				t.Fatalf("resumed at step %d", b.Step())
			}
			if _, err := b.Run(); err != nil {
				t.Fatal(err)
			}
			got := hostParams(b.Model())
			for name, w := range want {
				if !reflect.DeepEqual(w, got[name]) {
					t.Errorf("%s differs after resume", name)
				}
			}
			// The resumed run's metrics log holds the records up to the
			// checkpoint plus its own, like the uninterrupted one.
			ra, rb := readMetrics(t, outA), readMetrics(t, outB)
			if len(ra) != len(rb) {
				t.Errorf("metrics.jsonl: %d records uninterrupted, %d resumed", len(ra), len(rb))
			}
			for i := range ra {
				if i < len(rb) && (ra[i].Step != rb[i].Step || !reflect.DeepEqual(ra[i].Loss, rb[i].Loss)) {
					t.Errorf("record %d: %+v vs %+v", i, ra[i], rb[i])
				}
			}
			// Resuming with a changed setting warns that it will differ.
			c := mk(t.TempDir())
			c.LearningRate = 5e-4
			var log strings.Builder
			newTrainer(t, c, base, data, data, ck, &log)
			if !strings.Contains(log.String(), "warning: resume: learning_rate is 0.0005 here but 0.001") {
				t.Errorf("no drift warning:\n%s", log.String())
			}
		})
	}
}

// testConfigFor is the resume test's configuration.
func testConfigFor(base, out string, lora bool) config.Config {
	c := testConfig(base, out)
	c.UseLoRA = lora
	c.LoRADropout = 0.1
	c.LearnTemperature = true
	c.BatchSize = 4
	c.GradientAccumulationSteps = 3 // 4 batches -> groups [3, 1]
	c.Epochs = 3
	c.SchedulerType = "cosine"
	c.WarmupSteps = 2
	c.SaveStrategy = "steps"
	c.SaveSteps = 1
	c.EvalStrategy = "epoch"
	c.MaxGradNorm = 0.5
	c.WeightDecay = 0.1
	return c
}

// Checkpoint layout: merged model in Hugging Face layout with the base
// model's tokenizer and preprocessor files, a PEFT adapter, trainer state;
// the merged checkpoint loads back and embeds as the trained LoRA model.
func TestCheckpointLayout(t *testing.T) {
	base := tinyModelDir(t)
	out := t.TempDir()
	c := testConfig(base, out)
	c.LearningRate = 1e-2
	c.Epochs = 2
	c.SaveStrategy, c.SaveSteps = "epoch", 0
	data := synthData(4, 8, 2)
	tr := newTrainer(t, c, base, data, nil, "", nil)
	if _, err := tr.Run(); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(out)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if want := []string{"checkpoint-2", "checkpoint-4", "final", "metrics.jsonl"}; !reflect.DeepEqual(names, want) {
		t.Errorf("output_dir holds %v, want %v", names, want)
	}
	ck := filepath.Join(out, "checkpoint-4")
	for _, f := range []string{"config.json", "model.safetensors", "vocab.json", "merges.txt", "preprocessor_config.json",
		"adapter/adapter_config.json", "adapter/adapter_model.safetensors", StateFile, OptimizerFile, TrainableFile, ConfigFile} {
		if _, err := os.Stat(filepath.Join(ck, f)); err != nil {
			t.Errorf("checkpoint lacks %s", f)
		}
	}
	// transformers treats a folder with adapter_config.json as an adapter.
	if _, err := os.Stat(filepath.Join(ck, "adapter_config.json")); err == nil {
		t.Errorf("adapter_config.json beside the merged model")
	}
	for _, f := range []string{"config.json", "model.safetensors", "vocab.json", "adapter/adapter_config.json"} {
		if _, err := os.Stat(filepath.Join(out, "final", f)); err != nil {
			t.Errorf("final lacks %s", f)
		}
	}
	// adapter_config.json as peft writes it.
	raw, err := os.ReadFile(filepath.Join(ck, "adapter", "adapter_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ac map[string]any
	if err := json.Unmarshal(raw, &ac); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"peft_type": "LORA", "r": 4.0, "lora_alpha": 8.0, "lora_dropout": 0.0, "bias": "none",
		"base_model_name_or_path": base} {
		if ac[k] != v {
			t.Errorf("adapter_config %s = %v, want %v", k, ac[k], v)
		}
	}
	if tt, ok := ac["task_type"]; !ok || tt != nil {
		t.Errorf("adapter_config task_type = %v (present %v), want null", tt, ok)
	}
	if tm, _ := ac["target_modules"].([]any); len(tm) != 4 {
		t.Errorf("target_modules %v", ac["target_modules"])
	}
	af, err := safetensors.Load(filepath.Join(ck, "adapter", "adapter_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if len(af.Tensors) != 2*4*4 { // 2 towers x 2 layers x 4 modules, A and B each
		t.Errorf("%d adapter tensors, want 32", len(af.Tensors))
	}
	for k := range af.Tensors {
		if !strings.HasPrefix(k, "base_model.model.") || !(strings.HasSuffix(k, ".lora_A.weight") || strings.HasSuffix(k, ".lora_B.weight")) {
			t.Errorf("adapter key %q is not PEFT's", k)
		}
	}
	if _, ok := af.Tensors["base_model.model.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight"]; !ok {
		t.Error("adapter lacks text layer 0 q_proj lora_A")
	}
	var st State
	raw, _ = os.ReadFile(filepath.Join(ck, StateFile))
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	if st.GlobalStep != 4 || st.Epoch != 2 || st.MaxSteps != 4 || !st.UseLoRA || len(st.LogHistory) != 4 {
		t.Errorf("trainer state %+v", st)
	}
	// No temporary directories (or atomicfile's temporary files) left behind.
	filepath.Walk(out, func(p string, info os.FileInfo, err error) error {
		if b := filepath.Base(p); strings.HasPrefix(b, tmpPrefix) || strings.HasPrefix(b, oldPrefix) || strings.Contains(b, ".tmp") {
			t.Errorf("leftover %s", p)
		}
		return nil
	})

	// The merged checkpoint embeds as the trained LoRA model.
	merged, err := model.Load(ck, testBackend())
	if err != nil {
		t.Fatal(err)
	}
	if merged.LoRA() != nil {
		t.Error("merged checkpoint carries LoRA")
	}
	wi, wt, err := Embed(tr.Model(), tr.pre, data, 5)
	if err != nil {
		t.Fatal(err)
	}
	gi, gt, err := Embed(merged, tr.pre, data, 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range [][2][]float32{{wi, gi}, {wt, gt}} {
		var worst float64
		for i := range pr[0] {
			worst = math.Max(worst, math.Abs(float64(pr[0][i]-pr[1][i])))
		}
		if !(worst <= 1e-5) {
			t.Errorf("merged model's embeddings differ by %.3g", worst)
		}
	}
	// And the LoRA actually changed the model (otherwise the check is empty).
	orig, _ := model.Load(base, testBackend())
	oi, _, _ := Embed(orig, tr.pre, data, 5)
	var moved float64
	for i := range oi {
		moved = math.Max(moved, math.Abs(float64(oi[i]-wi[i])))
	}
	if !(moved >= 1e-3) {
		t.Errorf("training barely moved the embeddings (%.3g)", moved)
	}
	// The adapter applied to the base model gives the same embeddings too.
	withAdapter, _ := model.Load(base, testBackend())
	if err := withAdapter.LoadAdapter(filepath.Join(ck, AdapterDir)); err != nil {
		t.Fatal(err)
	}
	ai, _, _ := Embed(withAdapter, tr.pre, data, 5)
	for i := range ai {
		if !(math.Abs(float64(ai[i]-wi[i])) <= 1e-5) {
			t.Fatalf("base + adapter embedding %d: %v, trained %v", i, ai[i], wi[i])
		}
	}
}

// An existing checkpoint directory is replaced whole, never merged into.
func TestReplaceDir(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "checkpoint-1")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "stale"), []byte("x"), 0o644)
	tmp := filepath.Join(root, tmpPrefix+"x")
	os.MkdirAll(tmp, 0o755)
	os.WriteFile(filepath.Join(tmp, "fresh"), []byte("y"), 0o644)
	if err := replaceDir(tmp, dir); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "fresh" {
		t.Errorf("dir holds %v", ents)
	}
	ents, _ = os.ReadDir(root)
	if len(ents) != 1 {
		t.Errorf("root holds %v", ents)
	}
}
