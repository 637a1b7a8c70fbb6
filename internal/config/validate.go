package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/clipline/clipline/internal/device"
)

// Schedulers are the accepted scheduler_type values.
var Schedulers = []string{"cosine", "linear", "constant", "constant_with_warmup"}

// LossTypes are the accepted loss_type values: CLIP's symmetric InfoNCE
// and SigLIP's pairwise sigmoid loss (internal/loss).
var LossTypes = []string{"infonce", "sigmoid"}

// Strategies are the accepted eval_strategy and save_strategy values.
var Strategies = []string{"epoch", "steps", "no"}

// Validate normalises spelling (case of enum values) and checks every
// value, returning a *ValueError naming the first bad key.
func (c *Config) Validate() error {
	bad := func(key string, val any, reason string, args ...any) error {
		return &ValueError{Key: key, Value: fmt.Sprint(val), Reason: fmt.Sprintf(reason, args...)}
	}
	c.SchedulerType = strings.ToLower(strings.TrimSpace(c.SchedulerType))
	c.LossType = strings.ToLower(strings.TrimSpace(c.LossType))
	c.EvalStrategy = normStrategy(c.EvalStrategy)
	c.SaveStrategy = normStrategy(c.SaveStrategy)
	c.ReportTo = normReportTo(c.ReportTo)

	if strings.TrimSpace(c.ModelNameOrPath) == "" {
		return bad("model_name_or_path", c.ModelNameOrPath, "empty: give --model DIR or a Hugging Face id")
	}
	if c.UseLoRA {
		if c.LoRAR < 1 {
			return bad("lora_r", c.LoRAR, "want at least 1")
		}
		if !(c.LoRAAlpha > 0) {
			return bad("lora_alpha", fmtF(c.LoRAAlpha), "want a positive number")
		}
		if c.LoRADropout < 0 || c.LoRADropout >= 1 {
			return bad("lora_dropout", fmtF(c.LoRADropout), "want a probability in [0, 1)")
		}
		if len(c.LoRATargetModules) == 0 {
			return bad("lora_target_modules", "[]", "want at least one module name (default %v)", DefaultTargetModules)
		}
		for _, m := range c.LoRATargetModules {
			if strings.TrimSpace(m) == "" {
				return bad("lora_target_modules", listText(c.LoRATargetModules), "empty module name")
			}
		}
	}
	if strings.TrimSpace(c.OutputDir) == "" {
		return bad("output_dir", c.OutputDir, "empty")
	}
	if c.Epochs < 1 {
		return bad("epochs", c.Epochs, "want at least 1")
	}
	if c.MaxSteps == -1 {
		c.MaxSteps = 0 // Hugging Face's "unset"
	}
	if c.MaxSteps < 0 {
		return bad("max_steps", c.MaxSteps, "want a number >= 0 (0 or -1: epochs decide)")
	}
	if c.BatchSize < 2 {
		return bad("batch_size", c.BatchSize, "want at least 2 (in-batch negatives need two pairs)")
	}
	if !(c.LearningRate >= 0) {
		return bad("learning_rate", fmtF(c.LearningRate), "want a number >= 0")
	}
	if !(c.WeightDecay >= 0) {
		return bad("weight_decay", fmtF(c.WeightDecay), "want a number >= 0")
	}
	if !(c.MaxGradNorm >= 0) {
		return bad("max_grad_norm", fmtF(c.MaxGradNorm), "want a number >= 0 (0 disables clipping)")
	}
	if c.GradientAccumulationSteps < 1 {
		return bad("gradient_accumulation_steps", c.GradientAccumulationSteps, "want at least 1")
	}
	if !oneOf(c.SchedulerType, Schedulers) {
		return bad("scheduler_type", c.SchedulerType, "want one of %s", strings.Join(Schedulers, ", "))
	}
	if !(c.WarmupRatio >= 0 && c.WarmupRatio <= 1) {
		return bad("warmup_ratio", fmtF(c.WarmupRatio), "want a fraction in [0, 1]")
	}
	if c.WarmupSteps < 0 {
		return bad("warmup_steps", c.WarmupSteps, "want a number >= 0 (0 uses warmup_ratio)")
	}
	if !oneOf(c.LossType, LossTypes) {
		return bad("loss_type", c.LossType, "want one of %s", strings.Join(LossTypes, ", "))
	}
	if !(c.Temperature > 0) || math.IsInf(c.Temperature, 0) {
		return bad("temperature", fmtF(c.Temperature), "want a positive number")
	}
	if c.UseGradientCache && c.GradientCacheChunkSize < 1 {
		return bad("gradient_cache_chunk_size", c.GradientCacheChunkSize, "want at least 1")
	}
	if c.UseMRL {
		if len(c.MRLDims) == 0 {
			return bad("mrl_dims", "[]", "use_mrl needs at least one dimension")
		}
		seen := map[int]bool{}
		for _, d := range c.MRLDims {
			if d < 1 {
				return bad("mrl_dims", listText(c.MRLDims), "dimension %d: want at least 1", d)
			}
			if seen[d] {
				return bad("mrl_dims", listText(c.MRLDims), "dimension %d listed twice", d)
			}
			seen[d] = true
		}
		if len(c.MRLWeights) > 0 && len(c.MRLWeights) != len(c.MRLDims) {
			return bad("mrl_weights", listText(c.MRLWeights), "want one weight per mrl_dims entry (%d)", len(c.MRLDims))
		}
		for _, w := range c.MRLWeights {
			if !(w >= 0) {
				return bad("mrl_weights", listText(c.MRLWeights), "weights must be >= 0")
			}
		}
	}
	if c.LoggingSteps < 1 {
		return bad("logging_steps", c.LoggingSteps, "want at least 1")
	}
	if c.SaveSteps < 0 {
		return bad("save_steps", c.SaveSteps, "want a number >= 0 (0 saves at each epoch end)")
	}
	if !oneOf(c.SaveStrategy, Strategies) {
		return bad("save_strategy", c.SaveStrategy, "want one of %s", strings.Join(Strategies, ", "))
	}
	if c.SaveStrategy == "steps" && c.SaveSteps == 0 {
		return bad("save_steps", c.SaveSteps, "save_strategy steps needs save_steps > 0")
	}
	if c.SaveTotalLimit < 0 {
		return bad("save_total_limit", c.SaveTotalLimit, "want a number >= 0 (0 keeps every checkpoint)")
	}
	if !oneOf(c.EvalStrategy, Strategies) {
		return bad("eval_strategy", c.EvalStrategy, "want one of %s", strings.Join(Strategies, ", "))
	}
	if c.EvalSteps < 0 {
		return bad("eval_steps", c.EvalSteps, "want a number >= 0 (0 uses logging_steps)")
	}
	if c.ReportTo != "" && c.ReportTo != "tensorboard" {
		return bad("report_to", c.ReportTo, "want tensorboard or none")
	}
	if strings.TrimSpace(c.TrainSplit) == "" {
		return bad("train_split", c.TrainSplit, "empty")
	}
	if strings.TrimSpace(c.Device) == "" {
		return bad("device", c.Device, "empty (want %s)", device.Syntax)
	}
	spec, err := device.Parse(c.Device)
	if err != nil {
		return bad("device", c.Device, "%v", err)
	}
	if err := spec.Trainable(); err != nil {
		return bad("device", c.Device, "%v", err)
	}
	return nil
}

// EvalEvery is the step interval of step-wise evaluation (eval_steps, or
// logging_steps when 0, as Hugging Face does).
func (c *Config) EvalEvery() int {
	if c.EvalSteps > 0 {
		return c.EvalSteps
	}
	return c.LoggingSteps
}

// SaveEvery is the step interval of step-wise checkpoints; 0 means one
// checkpoint at each epoch end, -1 none (save_strategy no).
func (c *Config) SaveEvery() int {
	if c.SaveStrategy == "no" {
		return -1
	}
	return c.SaveSteps
}

// Scale is the LoRA scaling alpha/r.
func (c *Config) Scale() float64 { return c.LoRAAlpha / float64(c.LoRAR) }

// YAML renders the configuration with every key, for saving next to a
// checkpoint and for `train --print-config`.
func (c *Config) YAML() string {
	b, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Sprintf("# cannot render config: %v\n", err)
	}
	return string(b)
}

// normReportTo lower-cases report_to and spells "nothing" (none, no, a
// YAML 1.1 false) as empty; Hugging Face's "all" is tensorboard, the one
// integration clipline has.
func normReportTo(s string) string {
	switch s = strings.ToLower(strings.TrimSpace(s)); s {
	case "none", "no", "false":
		return ""
	case "all":
		return "tensorboard"
	}
	return s
}

// TensorBoard tells whether the run writes TensorBoard event files.
func (c *Config) TensorBoard() bool { return normReportTo(c.ReportTo) == "tensorboard" }

func normStrategy(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "false" || s == "none" {
		return "no" // YAML 1.1 readers turn a bare `no` into false
	}
	return s
}

func oneOf(s string, set []string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

func fmtF(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

func listText[T any](xs []T) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprint(x)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
