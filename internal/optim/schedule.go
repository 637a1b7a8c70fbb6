package optim

import (
	"fmt"
	"math"
)

// Schedule is a learning-rate schedule with Hugging Face's formulas
// (transformers.optimization): the learning rate of the optimizer step that
// follows `step` completed steps is Base·Factor(step). As in Hugging Face,
// the first step of a warmup schedule runs at learning rate 0.
type Schedule struct {
	Kind   string  `json:"kind"` // cosine, linear, constant, constant_with_warmup
	Base   float64 `json:"base_lr"`
	Warmup int     `json:"warmup_steps"` // ignored by constant, as in Hugging Face
	Total  int     `json:"total_steps"`  // total optimizer steps
}

// NewSchedule checks kind and the step counts.
func NewSchedule(kind string, base float64, warmup, total int) (Schedule, error) {
	switch kind {
	case "cosine", "linear", "constant", "constant_with_warmup":
	default:
		return Schedule{}, fmt.Errorf("optim: unknown scheduler_type %q (want cosine, linear, constant or constant_with_warmup)", kind)
	}
	if warmup < 0 || total < 0 {
		return Schedule{}, fmt.Errorf("optim: negative warmup (%d) or total (%d) steps", warmup, total)
	}
	return Schedule{Kind: kind, Base: base, Warmup: warmup, Total: total}, nil
}

// WarmupSteps is Hugging Face's TrainingArguments.get_warmup_steps:
// warmupSteps when positive, else ceil(total·ratio).
func WarmupSteps(total int, ratio float64, warmupSteps int) int {
	if warmupSteps > 0 {
		return warmupSteps
	}
	return int(math.Ceil(float64(total) * ratio))
}

// LR is the learning rate for the step after `step` completed steps.
func (s Schedule) LR(step int) float64 { return s.Base * s.Factor(step) }

// Factor is the multiplier of the base learning rate (the lr_lambda of
// Hugging Face's LambdaLR schedules).
func (s Schedule) Factor(step int) float64 {
	if s.Kind == "constant" {
		return 1
	}
	if step < s.Warmup {
		return float64(step) / float64(max(1, s.Warmup))
	}
	switch s.Kind {
	case "linear":
		return math.Max(0, float64(s.Total-step)/float64(max(1, s.Total-s.Warmup)))
	case "cosine":
		// num_cycles = 0.5: half a cosine from 1 to 0.
		progress := float64(step-s.Warmup) / float64(max(1, s.Total-s.Warmup))
		return math.Max(0, 0.5*(1+math.Cos(math.Pi*0.5*2*progress)))
	}
	return 1 // constant_with_warmup after warmup
}
