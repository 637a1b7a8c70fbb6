package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cfg.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func load(t *testing.T, o Options) (*Loaded, string) {
	t.Helper()
	var w bytes.Buffer
	o.Warn = &w
	l, err := Load(o)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return l, w.String()
}

func TestDefaultsNeedOnlyAModel(t *testing.T) {
	l, warn := load(t, Options{Flags: []Flag{{Key: "model_name_or_path", Name: "--model", Value: "m"}}})
	if warn != "" {
		t.Errorf("unexpected warnings: %s", warn)
	}
	want := Default()
	want.ModelNameOrPath = "m"
	if !reflect.DeepEqual(l.Config, want) {
		t.Errorf("got %+v\nwant %+v", l.Config, want)
	}
	if l.Sources["batch_size"] != FromDefault || l.Sources["model_name_or_path"] != FromFlag {
		t.Errorf("sources: %v", l.Sources)
	}
}

func TestMissingModelIsAnError(t *testing.T) {
	_, err := Load(Options{Warn: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), "model_name_or_path") {
		t.Fatalf("want an error naming model_name_or_path, got %v", err)
	}
}

// TestPrecedence: flag > --set > file > default, key by key.
func TestPrecedence(t *testing.T) {
	f := writeFile(t, `
model_name_or_path: "openai/clip-vit-base-patch32"
output_dir: from-file
batch_size: 128
epochs: 5
learning_rate: 2.0e-5
`)
	l, _ := load(t, Options{
		File:  f,
		Sets:  []string{"batch_size=64", "output_dir=from-set", "weight_decay=0.1"},
		Flags: []Flag{{Key: "output_dir", Name: "--out", Value: "from-flag"}, {Key: "device", Name: "--device"}},
	})
	c := l.Config
	if c.OutputDir != "from-flag" || l.Sources["output_dir"] != FromFlag {
		t.Errorf("output_dir = %q (%v), want from-flag", c.OutputDir, l.Sources["output_dir"])
	}
	if c.BatchSize != 64 || l.Sources["batch_size"] != FromSet {
		t.Errorf("batch_size = %d (%v), want 64 from --set", c.BatchSize, l.Sources["batch_size"])
	}
	if c.Epochs != 5 || l.Sources["epochs"] != FromFile {
		t.Errorf("epochs = %d (%v), want 5 from file", c.Epochs, l.Sources["epochs"])
	}
	if c.WeightDecay != 0.1 || c.LearningRate != 2e-5 {
		t.Errorf("weight_decay %v learning_rate %v", c.WeightDecay, c.LearningRate)
	}
	if c.MaxGradNorm != 1.0 || l.Sources["max_grad_norm"] != FromDefault {
		t.Errorf("max_grad_norm = %v (%v), want default 1", c.MaxGradNorm, l.Sources["max_grad_norm"])
	}
	if c.ModelNameOrPath != "openai/clip-vit-base-patch32" {
		t.Errorf("model %q", c.ModelNameOrPath)
	}
	// Later --set wins over an earlier one.
	l, _ = load(t, Options{File: f, Sets: []string{"epochs=1", "epochs=2"}})
	if l.Config.Epochs != 2 {
		t.Errorf("epochs %d, want last --set (2)", l.Config.Epochs)
	}
}

func TestAllKeysFromFile(t *testing.T) {
	f := writeFile(t, `
model_name_or_path: m
use_lora: false
lora_r: 8
lora_alpha: 16
lora_dropout: 0.1
lora_target_modules: [q_proj, v_proj]
output_dir: out
overwrite_output_dir: true
epochs: 2
max_steps: 9
batch_size: 16
learning_rate: 1e-4
weight_decay: 0
max_grad_norm: 0
gradient_accumulation_steps: 4
seed: 7
scheduler_type: LINEAR
warmup_ratio: 0.2
warmup_steps: 3
loss_type: InfoNCE
temperature: 0.07
learn_temperature: true
use_gradient_cache: true
gradient_cache_chunk_size: 4
recompute_mlp: true
use_mrl: true
mrl_dims: [32, 16]
mrl_weights: [1, 0.5]
logging_steps: 5
save_steps: 50
save_strategy: steps
save_total_limit: 2
save_only_model: true
report_to: TensorBoard
eval_strategy: steps
eval_steps: 25
data_path: d.jsonl
val_data_path: v.jsonl
image_root: imgs
cache_dir: spools
train_split: tr
val_split: va
device: cuda:0
`)
	l, warn := load(t, Options{File: f})
	if warn != "" {
		t.Errorf("unexpected warnings: %s", warn)
	}
	want := Config{
		ModelNameOrPath: "m", UseLoRA: false, LoRAR: 8, LoRAAlpha: 16, LoRADropout: 0.1,
		LoRATargetModules: []string{"q_proj", "v_proj"}, OutputDir: "out", OverwriteOutputDir: true, Epochs: 2, MaxSteps: 9, BatchSize: 16,
		LearningRate: 1e-4, WeightDecay: 0, MaxGradNorm: 0, GradientAccumulationSteps: 4, Seed: 7,
		SchedulerType: "linear", WarmupRatio: 0.2, WarmupSteps: 3, LossType: "infonce", Temperature: 0.07,
		LearnTemperature: true, UseGradientCache: true, GradientCacheChunkSize: 4, RecomputeMLP: true, UseMRL: true,
		MRLDims: []int{32, 16}, MRLWeights: []float64{1, 0.5}, LoggingSteps: 5, SaveSteps: 50,
		SaveStrategy: "steps", SaveTotalLimit: 2, SaveOnlyModel: true, ReportTo: "tensorboard", EvalStrategy: "steps", EvalSteps: 25,
		DataPath: "d.jsonl", ValDataPath: "v.jsonl", ImageRoot: "imgs", CacheDir: "spools", TrainSplit: "tr", ValSplit: "va",
		Device: "cuda:0",
	}
	if !reflect.DeepEqual(l.Config, want) {
		t.Errorf("got  %+v\nwant %+v", l.Config, want)
	}
	// Every key was set from the file.
	for _, k := range Keys() {
		if l.Sources[k] != FromFile {
			t.Errorf("key %s: source %v, want file", k, l.Sources[k])
		}
	}
}

// The tutorial's config (reference-tutorial.md section 4.1) loads without
// a warning: its data keys are clipline's, and the keys clipline has no use
// for hold values that ask for nothing (encoder_mode: auto, report_to:
// none, torch_distributed_debug: no).
func TestTutorialConfig(t *testing.T) {
	f := writeFile(t, `
model_name_or_path: "openai/clip-vit-base-patch32"
encoder_mode: "auto"
use_lora: true
lora_r: 16
lora_alpha: 32
data_path: "data/flickr30k/train.jsonl"
val_data_path: "data/flickr30k/val.jsonl"
image_root: "data/flickr30k"
output_dir: "experiments/output_clip_t2i"
epochs: 3
batch_size: 128
learning_rate: 2.0e-5
weight_decay: 0.01
max_grad_norm: 1.0
scheduler_type: "cosine"
warmup_ratio: 0.1
loss_type: "infonce"
temperature: 0.05
use_gradient_cache: false
gradient_cache_chunk_size: 64
use_mrl: false
mrl_dims: [768, 512, 256, 128]
logging_steps: 10
save_steps: 0
eval_strategy: "epoch"
report_to: "none"
torch_distributed_debug: "no"
`)
	l, warn := load(t, Options{File: f})
	if warn != "" || len(l.Warnings) != 0 {
		t.Errorf("warnings:\n%s", warn)
	}
	// Values that ask for what clipline lacks are still named, with the line.
	f2 := writeFile(t, "encoder_mode: qwen3_vl\nreport_to: wandb\ntorch_distributed_debug: INFO\nmodel_name_or_path: m\n")
	l2, warn := load(t, Options{File: f2})
	for i, k := range []string{"encoder_mode", "report_to", "torch_distributed_debug"} {
		if want := fmt.Sprintf("%s:%d: key %q ignored: ", f2, i+1, k); !strings.Contains(warn, want) {
			t.Errorf("no warning %q in:\n%s", want, warn)
		}
	}
	if len(l2.Warnings) != 3 {
		t.Errorf("%d warnings, want 3:\n%s", len(l2.Warnings), warn)
	}
	c := l.Config
	if c.BatchSize != 128 || c.LearningRate != 2e-5 || c.Temperature != 0.05 || !c.UseLoRA ||
		!reflect.DeepEqual(c.MRLDims, []int{768, 512, 256, 128}) || c.EvalStrategy != "epoch" ||
		c.DataPath != "data/flickr30k/train.jsonl" || c.ValDataPath != "data/flickr30k/val.jsonl" || c.ImageRoot != "data/flickr30k" {
		t.Errorf("config %+v", c)
	}
}

func TestShippedExample(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "examples", "clip_text_to_image.yaml")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("examples/clip_text_to_image.yaml: %v", err)
	}
	l, warn := load(t, Options{File: p})
	if warn != "" {
		t.Errorf("the shipped example gives warnings:\n%s", warn)
	}
	if l.Config.ModelNameOrPath != "openai/clip-vit-base-patch32" || !l.Config.UseLoRA {
		t.Errorf("example config: %+v", l.Config)
	}
}

func TestUnknownKeyWarns(t *testing.T) {
	f := writeFile(t, "model_name_or_path: m\nbatch_sise: 8\nfrobnicate: 1\n")
	l, warn := load(t, Options{File: f, Sets: []string{"lerning_rate=1e-3"}})
	for _, want := range []string{
		`unknown key "batch_sise" ignored (did you mean "batch_size"?)`,
		`unknown key "frobnicate" ignored`,
		`--set lerning_rate=1e-3: unknown key "lerning_rate" ignored (did you mean "learning_rate"?)`,
	} {
		if !strings.Contains(warn, want) {
			t.Errorf("warnings lack %q:\n%s", want, warn)
		}
	}
	if strings.Contains(warn, `"frobnicate" ignored (did you mean`) {
		t.Errorf("frobnicate should get no suggestion:\n%s", warn)
	}
	if len(l.Warnings) != 3 {
		t.Errorf("%d warnings, want 3", len(l.Warnings))
	}
	if l.Config.BatchSize != Default().BatchSize {
		t.Errorf("a misspelt key changed batch_size")
	}
}

func TestAliases(t *testing.T) {
	f := writeFile(t, "model_name: m\nlr: 5.0e-5\nnum_train_epochs: 4\nlr_scheduler_type: linear\n")
	l, warn := load(t, Options{File: f})
	if warn != "" {
		t.Errorf("warnings: %s", warn)
	}
	c := l.Config
	if c.ModelNameOrPath != "m" || c.LearningRate != 5e-5 || c.Epochs != 4 || c.SchedulerType != "linear" {
		t.Errorf("aliases not applied: %+v", c)
	}
	f = writeFile(t, "model_name_or_path: m\nlr: 1e-5\nlearning_rate: 2e-5\n")
	if _, err := Load(Options{File: f, Warn: &bytes.Buffer{}}); err == nil || !strings.Contains(err.Error(), "both set learning_rate") {
		t.Errorf("alias conflict: got %v", err)
	}
}

func TestLossTypes(t *testing.T) {
	for in, want := range map[string]string{"infonce": "infonce", "InfoNCE": "infonce", "sigmoid": "sigmoid", " Sigmoid ": "sigmoid"} {
		l, err := Load(Options{Sets: []string{"model_name_or_path=m", "loss_type=" + in}, Warn: &bytes.Buffer{}})
		if err != nil {
			t.Errorf("loss_type %q: %v", in, err)
		} else if l.Config.LossType != want {
			t.Errorf("loss_type %q read as %q, want %q", in, l.Config.LossType, want)
		}
	}
	l, _ := load(t, Options{Sets: []string{"model_name_or_path=m"}})
	if l.Config.LossType != "infonce" || l.Where("loss_type") != "default" {
		t.Errorf("default loss_type %q from %s, want infonce from the default", l.Config.LossType, l.Where("loss_type"))
	}
}

func TestSetParsing(t *testing.T) {
	l, _ := load(t, Options{Sets: []string{
		"model_name_or_path=dir with spaces",
		"lora_target_modules=q_proj, v_proj",
		"mrl_dims=[64,32]",
		"use_mrl=true",
		"use_lora=false",
		"output_dir=123",
		"seed=-1",
	}})
	c := l.Config
	if c.ModelNameOrPath != "dir with spaces" || !reflect.DeepEqual(c.LoRATargetModules, []string{"q_proj", "v_proj"}) ||
		!reflect.DeepEqual(c.MRLDims, []int{64, 32}) || !c.UseMRL || c.UseLoRA || c.OutputDir != "123" || c.Seed != -1 {
		t.Errorf("got %+v", c)
	}
	// null restores the default.
	l, _ = load(t, Options{Sets: []string{"model_name_or_path=m", "lora_target_modules=[a]", "lora_target_modules=null"}})
	if !reflect.DeepEqual(l.Config.LoRATargetModules, DefaultTargetModules) {
		t.Errorf("null: %v", l.Config.LoRATargetModules)
	}
	if _, err := Load(Options{Sets: []string{"batch_size"}, Warn: &bytes.Buffer{}}); err == nil || !strings.Contains(err.Error(), "key=value") {
		t.Errorf("--set without '=': %v", err)
	}
}

func TestBadValues(t *testing.T) {
	cases := []struct {
		set     string
		key     string
		val     string
		because string
	}{
		{"batch_size=abc", "batch_size", "abc", "an integer"},
		{"batch_size=3.5", "batch_size", "3.5", "an integer"},
		{"batch_size=1", "batch_size", "1", "at least 2"},
		{"epochs=0", "epochs", "0", "at least 1"},
		{"learning_rate=fast", "learning_rate", "fast", "a number"},
		{"learning_rate=-1", "learning_rate", "-1", ">= 0"},
		{"use_lora=maybe", "use_lora", "maybe", "true or false"},
		{"scheduler_type=polynomial", "scheduler_type", "polynomial", "cosine, linear, constant, constant_with_warmup"},
		{"loss_type=triplet", "loss_type", "triplet", "infonce, sigmoid"},
		{"temperature=0", "temperature", "0", "positive"},
		{"warmup_ratio=1.5", "warmup_ratio", "1.5", "[0, 1]"},
		{"lora_dropout=1", "lora_dropout", "1", "[0, 1)"},
		{"lora_r=0", "lora_r", "0", "at least 1"},
		{"eval_strategy=sometimes", "eval_strategy", "sometimes", "epoch, steps, no"},
		{"mrl_dims=[64,x]", "mrl_dims", "[64, x]", "a list of integers"},
		{"max_grad_norm=-0.5", "max_grad_norm", "-0.5", ">= 0"},
		{"gradient_accumulation_steps=0", "gradient_accumulation_steps", "0", "at least 1"},
		{"logging_steps=0", "logging_steps", "0", "at least 1"},
		{"max_steps=-2", "max_steps", "-2", ">= 0"},
		{"max_steps=ten", "max_steps", "ten", "an integer"},
		{"save_total_limit=-1", "save_total_limit", "-1", ">= 0"},
		{"save_only_model=yes please", "save_only_model", "yes please", "true or false"},
		{"overwrite_output_dir=2", "overwrite_output_dir", "2", "true or false"},
	}
	for _, tc := range cases {
		_, err := Load(Options{Sets: []string{"model_name_or_path=m", tc.set}, Warn: &bytes.Buffer{}})
		var ve *ValueError
		if !errors.As(err, &ve) {
			t.Errorf("%s: want a ValueError, got %v", tc.set, err)
			continue
		}
		msg := err.Error()
		if ve.Key != tc.key || ve.Value != tc.val || !strings.Contains(msg, tc.because) ||
			!strings.Contains(msg, tc.key) || !strings.Contains(msg, `"`+tc.val+`"`) || !strings.Contains(msg, "--set") {
			t.Errorf("%s: error %q (key %q value %q)", tc.set, msg, ve.Key, ve.Value)
		}
	}
	// A bad value in a file names the file and line.
	f := writeFile(t, "model_name_or_path: m\n\nbatch_size: [1, 2]\n")
	_, err := Load(Options{File: f, Warn: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), f+":3") || !strings.Contains(err.Error(), "batch_size") {
		t.Errorf("file error: %v", err)
	}
	// Range errors found after merging also name where the value came from.
	f = writeFile(t, "model_name_or_path: m\nepochs: -2\n")
	_, err = Load(Options{File: f, Warn: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), f+":2") || !strings.Contains(err.Error(), `"-2"`) {
		t.Errorf("range error: %v", err)
	}
	// MRL needs dims when enabled, not otherwise.
	if _, err := Load(Options{Sets: []string{"model_name_or_path=m", "use_mrl=true"}, Warn: &bytes.Buffer{}}); err == nil || !strings.Contains(err.Error(), "mrl_dims") {
		t.Errorf("use_mrl without dims: %v", err)
	}
	// Malformed YAML is an error naming the file.
	f = writeFile(t, "model_name_or_path: [m\n")
	if _, err := Load(Options{File: f, Warn: &bytes.Buffer{}}); err == nil || !strings.Contains(err.Error(), f) {
		t.Errorf("malformed yaml: %v", err)
	}
	f = writeFile(t, "- a\n- b\n")
	if _, err := Load(Options{File: f, Warn: &bytes.Buffer{}}); err == nil || !strings.Contains(err.Error(), "mapping") {
		t.Errorf("list document: %v", err)
	}
}

// max_steps -1 is Hugging Face's default and means unset, as 0 does.
func TestMaxStepsUnset(t *testing.T) {
	l, _ := load(t, Options{Sets: []string{"model_name_or_path=m", "max_steps=-1"}})
	if l.Config.MaxSteps != 0 {
		t.Errorf("max_steps -1 became %d, want 0", l.Config.MaxSteps)
	}
}

func TestStrategies(t *testing.T) {
	// A YAML 1.1 "no" written as a bool still means no.
	l, _ := load(t, Options{Sets: []string{"model_name_or_path=m", "eval_strategy=false"}})
	if l.Config.EvalStrategy != "no" {
		t.Errorf("eval_strategy %q", l.Config.EvalStrategy)
	}
	c := Default()
	c.LoggingSteps = 7
	if c.EvalEvery() != 7 {
		t.Errorf("eval_steps 0 should follow logging_steps")
	}
	c.EvalSteps = 3
	if c.EvalEvery() != 3 {
		t.Errorf("EvalEvery %d", c.EvalEvery())
	}
	if c.SaveEvery() != 0 {
		t.Errorf("SaveEvery %d", c.SaveEvery())
	}
	c.SaveStrategy = "no"
	if c.SaveEvery() != -1 {
		t.Errorf("SaveEvery %d", c.SaveEvery())
	}
}

func TestYAMLRoundTrip(t *testing.T) {
	c := Default()
	c.ModelNameOrPath = "m"
	c.MRLDims = []int{8, 4}
	f := writeFile(t, c.YAML())
	l, warn := load(t, Options{File: f})
	if warn != "" {
		t.Errorf("warnings: %s", warn)
	}
	if !reflect.DeepEqual(l.Config, c) {
		t.Errorf("round trip: %+v\nwant %+v", l.Config, c)
	}
}
