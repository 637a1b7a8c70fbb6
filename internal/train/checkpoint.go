package train

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/clipline/clipline/internal/atomicfile"
	"github.com/clipline/clipline/internal/metrics"
	"github.com/clipline/clipline/internal/optim"
	"github.com/clipline/clipline/internal/safetensors"
)

// Files of a checkpoint directory besides the model's and the adapter's.
const (
	StateFile     = "trainer_state.json"    // step, schedule, best metric, log history
	OptimizerFile = "optimizer.safetensors" // AdamW moments exp_avg.NAME, exp_avg_sq.NAME
	TrainableFile = "trainable.safetensors" // LoRA runs: exact values of every trained tensor
	ConfigFile    = "training_config.yaml"  // the effective configuration
	AdapterDir    = "adapter"               // LoRA runs: the PEFT adapter (adapter_config.json, adapter_model.safetensors)
	bestInfoFile  = "best_metric.json"      // in output_dir/best
	checkpointFmt = "checkpoint-%d"         // output_dir/checkpoint-STEP
	tmpPrefix     = ".tmp-"                 // temporary directories before rename
	oldPrefix     = ".old-"                 // a replaced directory, removed after rename
)

// CopiedFiles are copied from the base model directory into every saved
// model so it is complete for tokenize, decode, embed and transformers.
// (spiece.model: SigLIP's SentencePiece vocabulary.)
var CopiedFiles = []string{"vocab.json", "merges.txt", "spiece.model", "tokenizer.json", "tokenizer_config.json",
	"special_tokens_map.json", "preprocessor_config.json"}

// State is trainer_state.json: what --resume needs besides the tensors,
// with Hugging Face's field names where it has them.
type State struct {
	GlobalStep          int            `json:"global_step"`
	Epoch               float64        `json:"epoch"`
	MaxSteps            int            `json:"max_steps"`
	StepsPerEpoch       int            `json:"steps_per_epoch"`
	NumTrainEpochs      int            `json:"num_train_epochs"`
	TrainBatchSize      int            `json:"train_batch_size"`
	TrainPairs          int            `json:"train_pairs"`
	Seed                int64          `json:"seed"`
	Schedule            optim.Schedule `json:"lr_schedule"`
	BestMetric          *float64       `json:"best_metric"`
	BestMetricName      string         `json:"best_metric_name"`
	BestStep            int            `json:"best_step,omitempty"`
	BestModelCheckpoint string         `json:"best_model_checkpoint,omitempty"`
	BaseModel           string         `json:"base_model_name_or_path"`
	UseLoRA             bool           `json:"use_lora"`
	LogHistory          []Record       `json:"log_history"`
	// The shuffle of epoch e is EpochOrder(pairs, Seed, e): the position
	// is (GlobalStep / StepsPerEpoch, GlobalStep % StepsPerEpoch), so no
	// generator state needs saving; dropout masks are keyed by the step.
	RNG string `json:"rng"`
	// ModelOnly: saved with save_only_model, without the optimizer state
	// (and LoRA's trainable.safetensors), so it cannot be resumed.
	ModelOnly bool `json:"save_only_model,omitempty"`
}

func readState(dir string) (*State, error) {
	p := filepath.Join(dir, StateFile)
	raw, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("train: resume: %w (is %s a checkpoint-STEP directory?)", err, dir)
	}
	var st State
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("train: resume: %s: %w", p, err)
	}
	if st.ModelOnly {
		return nil, fmt.Errorf("train: resume: %s was saved with save_only_model: it has no optimizer state and cannot be resumed; start a new run from its weights with --model %s", dir, dir)
	}
	if !resumable(dir) {
		return nil, fmt.Errorf("train: resume: %s lacks %s and cannot be resumed; start a new run from its weights with --model %s", dir, OptimizerFile, dir)
	}
	return &st, nil
}

// restore loads the optimizer state, trained tensors and counters of a
// checkpoint into a freshly built trainer.
func (t *Trainer) restore(st *State) error {
	dir := t.o.Resume
	if st.StepsPerEpoch != t.spe || st.TrainPairs != t.o.Train.Pairs() {
		return fmt.Errorf("train: resume %s: the checkpoint ran %d steps per epoch over %d pairs, this run has %d over %d (different data, batch_size or gradient_accumulation_steps)",
			dir, st.StepsPerEpoch, st.TrainPairs, t.spe, t.o.Train.Pairs())
	}
	if st.GlobalStep > t.total {
		return fmt.Errorf("train: resume %s: checkpoint is at step %d, past this run's %d steps", dir, st.GlobalStep, t.total)
	}
	if t.cfg.UseLoRA {
		f, err := safetensors.Load(filepath.Join(dir, TrainableFile))
		if err != nil {
			return fmt.Errorf("train: resume: %w", err)
		}
		for _, p := range t.params {
			ts, ok := f.Tensors[p.Name]
			if !ok {
				return fmt.Errorf("train: resume: %s lacks %s (different lora_target_modules or learn_temperature?)", f.Path, p.Name)
			}
			v, err := ts.Float32()
			if err != nil || len(v) != p.W.Len() {
				return fmt.Errorf("train: resume: %s: %s has %d values, want %d (%v)", f.Path, p.Name, len(v), p.W.Len(), err)
			}
			t.be.Upload(p.W, v)
		}
	}
	f, err := safetensors.Load(filepath.Join(dir, OptimizerFile))
	if err != nil {
		return fmt.Errorf("train: resume: %w", err)
	}
	if err := t.opt.LoadState(f.Tensors, st.GlobalStep); err != nil {
		return fmt.Errorf("train: resume %s: %w", dir, err)
	}
	t.step = st.GlobalStep
	t.history = st.LogHistory
	if st.BestMetric != nil {
		b := *st.BestMetric
		t.best, t.bestStep, t.bestCkpt = &b, st.BestStep, st.BestModelCheckpoint
		bd := filepath.Join(t.cfg.OutputDir, "best")
		if _, err := os.Stat(bd); err == nil {
			t.bestDir = bd
		}
	}
	fmt.Fprintf(t.log, "train: resuming from %s at step %d/%d (epoch %.2f)\n", dir, t.step, t.total, t.epochFloat())
	return nil
}

// warnConfigDrift reports keys whose value differs from the checkpoint's
// and would make the resumed run differ from an uninterrupted one.
func (t *Trainer) warnConfigDrift(dir string) {
	p := filepath.Join(dir, ConfigFile)
	diff, err := configDiff(p, t.cfg)
	if err != nil {
		fmt.Fprintf(t.log, "warning: resume: cannot compare the configurations: %v\n", err)
		return
	}
	for _, d := range diff {
		fmt.Fprintf(t.log, "warning: resume: %s is %s here but %s in %s; the run will not match an uninterrupted one\n", d.key, d.cur, d.saved, p)
	}
}

// yamlMap splits a rendered config into key -> value text (one key a line,
// lists rendered inline by their following lines).
func yamlMap(s string) map[string]string {
	out := map[string]string{}
	key := ""
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "-") {
			key = k
			out[key] = strings.TrimSpace(v)
		} else if key != "" {
			out[key] += strings.TrimSpace(line)
		}
	}
	return out
}

// saveCheckpoint writes output_dir/checkpoint-STEP with the model, adapter
// and trainer state, with the optimizer state when full (resumable), and
// prunes the checkpoints beyond save_total_limit.
func (t *Trainer) saveCheckpoint(full bool) error {
	if t.lastSaved == t.step && (t.savedFull || !full) {
		return nil
	}
	dir := t.checkpointDir()
	if err := t.saveModelDir(dir, true, full, nil); err != nil {
		return err
	}
	t.lastSaved, t.savedFull = t.step, full
	fmt.Fprintf(t.log, "train: saved %s\n", dir)
	return t.pruneCheckpoints()
}

func (t *Trainer) checkpointDir() string {
	return filepath.Join(t.cfg.OutputDir, fmt.Sprintf(checkpointFmt, t.step))
}

// interrupt saves a resumable checkpoint of the last step (even with
// save_only_model: it exists to be resumed) for Options.Stop.
func (t *Trainer) interrupt() error {
	if err := t.saveCheckpoint(true); err != nil {
		return err
	}
	return &Interrupted{Step: t.step, Total: t.total, Checkpoint: t.checkpointDir(), Cause: context.Cause(t.o.Stop)}
}

// saveModelDir writes a complete directory atomically: everything goes into
// a temporary sibling that is renamed into place (replacing an older one).
// extra files (name -> contents) are added to it.
func (t *Trainer) saveModelDir(dir string, withState, withOptimizer bool, extra map[string][]byte) (err error) {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("train: save: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, tmpPrefix+filepath.Base(dir)+"-")
	if err != nil {
		return fmt.Errorf("train: save: %w", err)
	}
	defer atomicfile.Track(tmp)() // removed if a second signal ends the process
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
			err = fmt.Errorf("train: saving %s: %w", dir, err)
		}
	}()
	if err := t.m.Save(tmp); err != nil {
		return err
	}
	for _, name := range CopiedFiles {
		if err := copyIfExists(filepath.Join(t.o.ModelDir, name), filepath.Join(tmp, name)); err != nil {
			return err
		}
	}
	if t.cfg.UseLoRA {
		// A folder of its own: transformers loads a directory holding
		// adapter_config.json as base + adapter, which would apply the adapter
		// to the merged weights a second time (seen with transformers 5.17).
		if err := t.m.SaveAdapter(filepath.Join(tmp, AdapterDir), t.cfg.ModelNameOrPath); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, ConfigFile), []byte(t.cfg.YAML()), 0o644); err != nil {
		return err
	}
	if withState {
		if err := t.writeState(tmp, withOptimizer); err != nil {
			return err
		}
	}
	for name, b := range extra {
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o644); err != nil {
			return err
		}
	}
	return replaceDir(tmp, dir)
}

func (t *Trainer) writeState(dir string, withOptimizer bool) error {
	st := State{
		GlobalStep: t.step, Epoch: t.epochFloat(), MaxSteps: t.total, StepsPerEpoch: t.spe,
		NumTrainEpochs: t.epochs, TrainBatchSize: t.cfg.BatchSize, TrainPairs: t.o.Train.Pairs(),
		Seed: t.cfg.Seed, Schedule: t.sched, BestMetric: t.best, BestMetricName: "eval_t2i_r1",
		BestStep: t.bestStep, BestModelCheckpoint: t.bestCkpt, BaseModel: t.cfg.ModelNameOrPath,
		UseLoRA: t.cfg.UseLoRA, LogHistory: t.history, ModelOnly: !withOptimizer,
		RNG: "stateless: epoch order from (seed, epoch), dropout from (seed, step)",
	}
	if st.LogHistory == nil {
		st.LogHistory = []Record{}
	}
	raw, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, StateFile), append(raw, '\n'), 0o644); err != nil {
		return err
	}
	if !withOptimizer {
		return nil
	}
	if err := safetensors.Save(filepath.Join(dir, OptimizerFile), t.opt.State(), map[string]string{
		"step": fmt.Sprint(t.opt.Steps())}); err != nil {
		return err
	}
	if t.cfg.UseLoRA {
		ts := map[string]safetensors.Tensor{}
		for _, p := range t.params {
			v := make([]float32, p.W.Len())
			t.be.Download(v, p.W)
			ts[p.Name] = safetensors.F32([]int{len(v)}, v)
		}
		if err := safetensors.Save(filepath.Join(dir, TrainableFile), ts, nil); err != nil {
			return err
		}
	}
	return nil
}

// replaceDir renames tmp to dir; an existing dir is moved aside first and
// removed after, so dir is never half-written.
func replaceDir(tmp, dir string) error {
	if _, err := os.Stat(dir); err == nil {
		old := filepath.Join(filepath.Dir(dir), oldPrefix+filepath.Base(dir)+"-"+filepath.Base(tmp))
		if err := os.Rename(dir, old); err != nil {
			return err
		}
		if err := os.Rename(tmp, dir); err != nil {
			os.Rename(old, dir)
			return err
		}
		return os.RemoveAll(old)
	}
	return os.Rename(tmp, dir)
}

func copyIfExists(src, dst string) error {
	raw, err := os.ReadFile(src)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return os.WriteFile(dst, raw, 0o644)
}

// saveBest writes output_dir/best with the current model and the metric.
func (t *Trainer) saveBest(eval *metrics.Summary) error {
	dir := filepath.Join(t.cfg.OutputDir, "best")
	raw, _ := json.MarshalIndent(map[string]any{"step": t.step, "epoch": t.epochFloat(), "metric": "eval_t2i_r1",
		"value": *t.best, "eval": eval}, "", "  ")
	if err := t.saveModelDir(dir, false, false, map[string][]byte{bestInfoFile: append(raw, '\n')}); err != nil {
		return err
	}
	t.bestDir = dir
	return nil
}
