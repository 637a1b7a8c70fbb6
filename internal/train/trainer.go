// Package train is the training loop of the train stage: contrastive
// fine-tuning of a CLIP or SigLIP model (LoRA or full) on (caption, image)
// pairs with symmetric InfoNCE or SigLIP's sigmoid loss (loss_type), with
// AdamW, Hugging Face learning-rate schedules, gradient clipping and
// accumulation, GradCache, Matryoshka prefixes, validation, checkpoints and
// exact resumption.
//
// One optimizer step:
//
//	zero grads
//	for each micro-batch of the accumulation group (model.TrainStep):
//	    forward both towers → download embeddings → loss on the host
//	    (internal/loss) → upload dLoss/dEmbedding / group size → backward
//	clip the global gradient norm → AdamW at the scheduled rate
//	clamp logit_scale to [0, ln 100] when it is trained with InfoNCE (as CLIP does)
//
// loss_type sigmoid (loss.Sigmoid) needs a model with logit_bias (SigLIP):
// a CLIP model is refused rather than given a bias the checkpoint could not
// keep. learn_temperature trains logit_scale and, for the sigmoid loss,
// logit_bias; a fixed temperature freezes both (s = 1/temperature, b the
// model's). The sigmoid loss's logit_scale is not clamped: big_vision and
// transformers clamp nothing, and a pretrained SigLIP may sit above ln 100.
//
// With GradCache (use_gradient_cache; model.TrainStep runs the chunks) a
// micro-batch is embedded chunk by chunk first, keeping no activations
// beyond one chunk's; the loss and its embedding gradients are computed
// over the whole batch; then each chunk is forwarded again (same dropout
// masks) and backpropagated with its slice of the embedding gradient. The gradients equal the plain batch's, so a batch
// larger than memory allows still sees every in-batch negative.
//
// An epoch visits every (caption, image) pair once in an order fixed by
// (seed, epoch) (EpochOrder). Pairs of one image that fall into one batch
// are not negatives of each other (loss.Options.ImageIDs). An epoch has
// ceil(pairs/batch_size) micro-batches, grouped into optimizer steps of
// gradient_accumulation_steps (the last group may be shorter); the run has
// epochs × groups steps, warmup_steps or ceil(steps × warmup_ratio) of them
// warming up. Accumulation averages the micro-batches' gradients; for a
// contrastive loss that is not a larger batch (negatives stay within each
// micro-batch), which is what GradCache is for.
//
// Output, in output_dir:
//
//	checkpoint-STEP/  config.json, model.safetensors (LoRA merged), tokenizer and
//	                  preprocessor files of the base model, adapter/ with
//	                  adapter_config.json and adapter_model.safetensors (PEFT,
//	                  loads with PeftModel.from_pretrained(base, dir+"/adapter")),
//	                  trainer_state.json,
//	                  optimizer.safetensors, trainable.safetensors (LoRA),
//	                  training_config.yaml: everything --resume needs
//	best/             the model at the highest validation t2i R@1 (the first
//	                  such evaluation), with best_metric.json
//	final/            the model after the last step
//	metrics.jsonl     one JSON object per logging step and per validation
//	runs/             with report_to: tensorboard, the same values as
//	                  TensorBoard event files (one file per process)
//
// output_dir holds one run (CheckOutputDir: a non-empty one is refused
// unless resumed from or overwritten). Every directory is written under a
// temporary name and renamed when complete; save_total_limit prunes the
// oldest checkpoints, save_only_model leaves out the optimizer state, and a
// cancelled Options.Stop saves a resumable checkpoint after the current
// step. A NaN or infinite loss (or gradient norm) stops the run with an
// error naming the step before anything of that step is saved.
package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/config"
	"github.com/clipline/clipline/internal/imageproc"
	"github.com/clipline/clipline/internal/loss"
	"github.com/clipline/clipline/internal/model"
	"github.com/clipline/clipline/internal/optim"
	"github.com/clipline/clipline/internal/tfevents"
)

// MaxLogitScale is CLIP's clamp on the logit_scale parameter: ln 100.
var MaxLogitScale = float32(math.Log(100))

// Options configure a training run.
type Options struct {
	Config config.Config
	// ModelDir is the base model's local directory (config.json,
	// model.safetensors, tokenizer and preprocessor files).
	ModelDir string
	Backend  backend.Backend
	Train    *Data
	Val      *Data // nil or empty: no validation
	// Resume is a checkpoint directory written by an earlier run ("": start
	// fresh). The run continues from its step and ends as an uninterrupted
	// run would.
	Resume string
	// FromScratch initialises the weights randomly from ModelDir's
	// config.json (model.New, seeded by the config's seed) instead of
	// loading model.safetensors: pretraining a base model. Resuming such a
	// run rebuilds the same initial weights.
	FromScratch bool
	// Log receives progress lines and validation tables (nil: discarded).
	Log io.Writer
	// Stop, when cancelled, ends the run after the current optimizer step
	// (and its logging, validation and checkpoint): Run saves a resumable
	// checkpoint of that step and returns an *Interrupted. nil: never.
	Stop context.Context
}

// Interrupted is Run's error when Options.Stop ended the run early.
type Interrupted struct {
	Step, Total int
	Checkpoint  string // the resumable checkpoint of Step
	Cause       error  // context.Cause(Stop): a cli.Signal for a signal
}

func (e *Interrupted) Error() string {
	return fmt.Sprintf("train: %v after step %d/%d; checkpoint in %s; to resume, run the same command with --resume %s",
		e.Cause, e.Step, e.Total, e.Checkpoint, e.Checkpoint)
}

// Unwrap is the cause, so that the signal's exit status reaches cli.Main.
func (e *Interrupted) Unwrap() error { return e.Cause }

// Result summarises a finished run.
type Result struct {
	Steps      int
	FinalDir   string
	BestDir    string  // "" when no validation ran
	BestMetric float64 // t2i R@1 of the best validation
	BestStep   int
	LastLoss   float64 // mean loss of the last logging window
}

// Trainer holds the model, optimizer, plans and host buffers of one run.
type Trainer struct {
	cfg     config.Config
	o       Options
	be      backend.Backend
	m       *model.Model
	log     io.Writer
	pre     imageproc.Config
	learn   bool // logit_scale (and, for the sigmoid loss, logit_bias) is trained
	sigmoid bool // loss_type sigmoid

	D, side, ctx int
	planB        int // rows per forward: batch_size, or the GradCache chunk
	vp           *model.VisionPlan
	tp           *model.TextPlan
	ts           *model.TrainStep // forward, loss and backward on vp and tp

	opt       *optim.AdamW
	params    []optim.Param
	sched     optim.Schedule
	groups    []int // micro-batches per optimizer step within an epoch
	spe       int   // optimizer steps per epoch
	total     int   // optimizer steps in the run
	epochs    int   // epochs the run touches (ceil(total / spe))
	numBatch  int   // micro-batches per epoch
	step      int   // optimizer steps done
	lastSaved int
	savedFull bool // the checkpoint at lastSaved has optimizer state

	// Host scratch.
	fetch *prefetcher // [planB, S, S, 3] decoded images, normalised on the device
	norm  [3][256]float32
	ids   []int32 // [planB, ctx]

	// Logging window and history.
	win        window
	history    []Record
	best       *float64
	bestStep   int
	bestDir    string
	bestCkpt   string
	metricsOut *os.File
	tb         *tfevents.Writer // report_to: tensorboard
	started    time.Time
	stepsRun   int // optimizer steps run by this process (for ETA)
}

// New loads the base model (or the checkpoint to resume), applies LoRA,
// sets what trains, and prepares the optimizer, schedule and memory plans.
func New(o Options) (*Trainer, error) {
	cfg := o.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Train == nil || o.Train.Pairs() == 0 {
		return nil, errors.New("train: no training pairs (check --train-split and that rows have captions)")
	}
	t := &Trainer{cfg: cfg, o: o, be: o.Backend, log: o.Log, learn: cfg.LearnTemperature, sigmoid: cfg.LossType == "sigmoid"}
	if t.log == nil {
		t.log = io.Discard
	}
	if err := CheckOutputDir(cfg, o.Resume, t.log); err != nil {
		return nil, err
	}
	var st *State
	if o.Resume != "" {
		var err error
		if st, err = readState(o.Resume); err != nil {
			return nil, err
		}
		if st.UseLoRA != cfg.UseLoRA {
			return nil, fmt.Errorf("train: resume %s: checkpoint has use_lora %v, config says %v", o.Resume, st.UseLoRA, cfg.UseLoRA)
		}
		t.warnConfigDrift(o.Resume)
	}

	// The model: full fine-tuning resumes from the checkpoint's exact F32
	// weights; LoRA from the base model plus the saved adapter values.
	from := o.ModelDir
	if st != nil && !cfg.UseLoRA {
		from = o.Resume
	}
	var m *model.Model
	var err error
	if o.FromScratch && from == o.ModelDir {
		var mc model.Config
		if mc, err = model.LoadConfig(filepath.Join(o.ModelDir, "config.json")); err == nil {
			m, err = model.New(mc, t.be, uint64(cfg.Seed))
		}
	} else {
		m, err = model.Load(from, t.be)
	}
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	t.m = m
	mc := m.Config()
	if t.sigmoid && !m.HasLogitBias() {
		return nil, &config.ValueError{Key: "loss_type", Value: cfg.LossType,
			Reason: fmt.Sprintf("the sigmoid loss needs a model with logit_bias (SigLIP, model_type siglip); %s has none (CLIP models train with infonce)", o.ModelDir)}
	}
	t.D, t.side = mc.ProjectionDim, mc.Vision.ImageSize
	if cfg.UseLoRA {
		if err := m.ApplyLoRA(model.LoRAConfig{R: cfg.LoRAR, Alpha: float32(cfg.LoRAAlpha), Dropout: float32(cfg.LoRADropout),
			Targets: cfg.LoRATargetModules, Seed: uint64(cfg.Seed)}); err != nil {
			return nil, fmt.Errorf("train: lora_target_modules %v: %w", cfg.LoRATargetModules, err)
		}
	}
	m.SetTrainable(t.learn, func(n string) bool { return n == "logit_scale" || (t.sigmoid && n == "logit_bias") })
	for _, d := range cfg.MRLDims {
		if cfg.UseMRL && d > t.D {
			return nil, &config.ValueError{Key: "mrl_dims", Value: fmt.Sprint(cfg.MRLDims),
				Reason: fmt.Sprintf("dimension %d exceeds the model's projection_dim %d", d, t.D)}
		}
	}

	// Data against the model.
	for _, d := range []*Data{o.Train, o.Val} {
		if d == nil || d.Pairs() == 0 {
			continue
		}
		if d.Side != t.side {
			return nil, fmt.Errorf("train: %s: images are %d px, the model takes %d", d.Name, d.Side, t.side)
		}
		if d.Context > mc.Text.MaxPositionEmbeddings {
			return nil, fmt.Errorf("train: %s: token context %d exceeds the model's %d", d.Name, d.Context, mc.Text.MaxPositionEmbeddings)
		}
	}
	t.ctx = o.Train.Context
	if t.pre, err = imageproc.ForModel(o.ModelDir, t.side); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}

	// Steps.
	t.numBatch = (o.Train.Pairs() + cfg.BatchSize - 1) / cfg.BatchSize
	t.groups = optim.Groups(t.numBatch, cfg.GradientAccumulationSteps)
	t.spe = len(t.groups)
	t.total = t.spe * cfg.Epochs
	if cfg.MaxSteps > 0 {
		t.total = cfg.MaxSteps // overrides epochs, and the schedule spans it
	}
	t.epochs = (t.total + t.spe - 1) / t.spe
	warm := optim.WarmupSteps(t.total, cfg.WarmupRatio, cfg.WarmupSteps)
	if t.sched, err = optim.NewSchedule(cfg.SchedulerType, cfg.LearningRate, warm, t.total); err != nil {
		return nil, err
	}

	// Gradients and optimizer over the trainable parameters.
	m.ZeroGrads()
	for _, p := range m.Params() {
		if p.Trainable {
			t.params = append(t.params, optim.Param{Name: p.Name, W: p.W, G: p.G, Decay: p.Decay})
		}
	}
	if len(t.params) == 0 {
		return nil, errors.New("train: nothing to train (no trainable parameters)")
	}
	if t.opt, err = optim.NewAdamW(t.be, t.params, cfg.WeightDecay); err != nil {
		return nil, err
	}
	if st != nil {
		if err := t.restore(st); err != nil {
			return nil, err
		}
	}

	// Plans and scratch.
	t.planB = cfg.BatchSize
	if cfg.UseGradientCache {
		t.planB = min(cfg.GradientCacheChunkSize, cfg.BatchSize)
	}
	m.RecomputeMLP(cfg.RecomputeMLP)
	t.vp = m.NewVisionPlan(t.planB, true)
	t.tp = m.NewTextPlan(t.planB, true)
	if t.ts, err = m.NewTrainStep(t.vp, t.tp); err != nil {
		return nil, err
	}
	t.fetch = newPrefetcher(t.be, t.planB, t.side*t.side*3)
	t.norm = t.pre.LUT()
	t.ids = make([]int32, t.planB*t.ctx)

	total, trainable := m.NumParams()
	fmt.Fprintf(t.log, "train: %d pairs (%d images), batch %d, %d steps per epoch, %d epochs, %d steps%s (warmup %d); %s parameters, %s trainable%s\n",
		o.Train.Pairs(), o.Train.Images(), cfg.BatchSize, t.spe, t.epochs, t.total, t.maxStepsNote(), warm, human(total), human(trainable), t.modeNote())
	return t, nil
}

func (t *Trainer) maxStepsNote() string {
	if t.cfg.MaxSteps > 0 {
		return " (max_steps)"
	}
	return ""
}

func (t *Trainer) modeNote() string {
	s := ""
	if t.cfg.UseLoRA {
		s += fmt.Sprintf("; LoRA r=%d alpha=%g on %v", t.cfg.LoRAR, t.cfg.LoRAAlpha, t.cfg.LoRATargetModules)
	}
	switch {
	case t.sigmoid && t.learn:
		s += fmt.Sprintf("; sigmoid loss, learning logit_scale (now %.3f) and logit_bias (now %.3f)", t.m.LogitScale(), t.m.LogitBias())
	case t.sigmoid:
		s += fmt.Sprintf("; sigmoid loss, temperature %g, logit_bias %.3f (frozen)", t.cfg.Temperature, t.m.LogitBias())
	case t.learn:
		s += fmt.Sprintf("; learning logit_scale (now %.3f)", t.m.LogitScale())
	default:
		s += fmt.Sprintf("; temperature %g", t.cfg.Temperature)
	}
	if t.cfg.UseGradientCache {
		s += fmt.Sprintf("; GradCache chunks of %d", t.planB)
	}
	if t.cfg.RecomputeMLP {
		s += "; MLP activations recomputed in the backward"
	}
	if t.cfg.UseMRL {
		s += fmt.Sprintf("; Matryoshka dims %v", t.cfg.MRLDims)
	}
	return s
}

// Model is the model being trained.
func (t *Trainer) Model() *model.Model { return t.m }

// Step is the number of optimizer steps done.
func (t *Trainer) Step() int { return t.step }

// TotalSteps is the number of optimizer steps of the whole run.
func (t *Trainer) TotalSteps() int { return t.total }

// Params are the trainable parameters as the optimizer sees them.
func (t *Trainer) Params() []optim.Param { return t.params }

// Close releases the plans and the metrics file.
func (t *Trainer) Close() {
	if t.fetch != nil {
		t.fetch.free()
		t.fetch = nil
	}
	if t.vp != nil {
		t.ts.Free()
		t.vp.Free()
		t.tp.Free()
		t.vp, t.tp, t.ts = nil, nil, nil
	}
	if t.metricsOut != nil {
		t.metricsOut.Close()
		t.metricsOut = nil
	}
	if t.tb != nil {
		t.tb.Close()
		t.tb = nil
	}
}

// Run trains to the end, validating and saving as configured, and writes
// output_dir/final.
func (t *Trainer) Run() (*Result, error) {
	cfg := t.cfg
	if err := os.MkdirAll(cfg.OutputDir, 0o755); err != nil {
		return nil, fmt.Errorf("train: output_dir: %w", err)
	}
	if err := t.openMetrics(); err != nil {
		return nil, err
	}
	t.started = time.Now()
	t.win.reset(t.started)
	t.lastSaved = t.step
	for t.step < t.total {
		epoch := t.step / t.spe
		order := EpochOrder(t.o.Train.Pairs(), cfg.Seed, epoch)
		cuts := Batches(len(order), cfg.BatchSize)
		g0 := t.step % t.spe
		b := 0
		for _, n := range t.groups[:g0] {
			b += n
		}
		for g := g0; g < t.spe && t.step < t.total; g++ {
			var batches [][]int32
			for k := 0; k < t.groups[g]; k++ {
				batches = append(batches, order[cuts[b+k]:cuts[b+k+1]])
			}
			b += t.groups[g]
			var next []int32 // the micro-batch after this step's, for the prefetch
			if b < t.numBatch && t.step+1 < t.total {
				next = order[cuts[b]:cuts[b+1]]
			}
			if err := t.optimizerStep(batches, next); err != nil {
				return nil, err
			}
			t.stepsRun++
			epochEnd := g == t.spe-1 || t.step == t.total // max_steps may end mid-epoch
			if t.step%cfg.LoggingSteps == 0 || t.step == t.total {
				t.logTrain()
			}
			evalNow := (cfg.EvalStrategy == "steps" && t.step%cfg.EvalEvery() == 0) ||
				(cfg.EvalStrategy == "epoch" && epochEnd)
			if evalNow && t.hasVal() {
				if err := t.evaluate(); err != nil {
					return nil, err
				}
			}
			every := cfg.SaveEvery()
			if (every > 0 && t.step%every == 0) || (every == 0 && epochEnd) {
				if err := t.saveCheckpoint(!cfg.SaveOnlyModel); err != nil {
					return nil, err
				}
			}
			if t.o.Stop != nil && t.o.Stop.Err() != nil && t.step < t.total {
				return nil, t.interrupt()
			}
		}
	}
	final := filepath.Join(cfg.OutputDir, "final")
	if err := t.saveModelDir(final, false, false, nil); err != nil {
		return nil, err
	}
	fmt.Fprintf(t.log, "train: done, %d steps in %s; ", t.step, time.Since(t.started).Round(time.Second))
	if t.bestDir != "" {
		fmt.Fprintf(t.log, "final model in %s, best (t2i R@1 %.4f at step %d) in %s\n", final, *t.best, t.bestStep, t.bestDir)
	} else {
		// Say it, since recipes name best/: a run without validation has none.
		fmt.Fprintf(t.log, "no validation ran (%s), so there is no best/: the model is final/ (%s)\n", t.noValReason(), final)
	}
	r := &Result{Steps: t.step, FinalDir: final, BestDir: t.bestDir, BestStep: t.bestStep, LastLoss: t.win.lastMean}
	if t.best != nil {
		r.BestMetric = *t.best
	}
	return r, nil
}

func (t *Trainer) hasVal() bool { return t.o.Val != nil && t.o.Val.Pairs() > 0 }

// noValReason says why a run wrote no best/.
func (t *Trainer) noValReason() string {
	switch {
	case t.cfg.EvalStrategy == "no":
		return "eval_strategy is no"
	case !t.hasVal():
		return "no validation pairs"
	}
	return "no evaluation step came" // eval_strategy steps with eval_steps past the end
}

// optimizerStep runs one accumulation group of micro-batches and updates;
// next is the micro-batch that follows (nil: none known), whose images are
// gathered ahead.
func (t *Trainer) optimizerStep(batches [][]int32, next []int32) error {
	step := t.step + 1 // 1-based number of the step being taken, for messages
	t.m.ZeroGrads()
	var lossSum float64
	pairs := 0
	for k, b := range batches {
		after := next
		if k+1 < len(batches) {
			after = batches[k+1]
		}
		l, err := t.microBatch(b, after, 1/float32(len(batches)), mix(uint64(t.cfg.Seed), uint64(step), uint64(k)))
		if err != nil {
			return fmt.Errorf("train: step %d: %w", step, err)
		}
		lossSum += l
		pairs += len(b)
	}
	norm := optim.ClipGradNorm(t.be, t.params, t.cfg.MaxGradNorm)
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		return fmt.Errorf("train: step %d: gradient norm is %v; stopping (nothing saved for this step)", step, norm)
	}
	lr := t.sched.LR(t.step)
	t.opt.Step(lr)
	if t.learn && !t.sigmoid {
		t.clampLogitScale()
	}
	t.step++
	t.win.add(lossSum/float64(len(batches)), norm, lr, pairs)
	return nil
}

// clampLogitScale keeps logit_scale in [0, ln 100], as OpenAI's and
// open_clip's training loops do after each step.
func (t *Trainer) clampLogitScale() {
	p := t.m.Param("logit_scale")
	v := t.m.LogitScale()
	c := min(max(v, 0), MaxLogitScale)
	if c != v {
		t.be.Upload(p.W, []float32{c})
	}
}

// microBatch computes one batch's loss and accumulates its gradients scaled
// by gscale (1/micro-batches per step). It returns the (unscaled) loss.
// next is the micro-batch after it (nil: none known).
func (t *Trainer) microBatch(pairs, next []int32, gscale float32, seed uint64) (float64, error) {
	b := t.batch(t.o.Train, pairs, next, seed)
	imgs := make([]int64, len(pairs))
	for i, p := range pairs {
		imgs[i] = int64(t.o.Train.PairImage[p])
	}
	b.Loss = func(img, txt []float32, n int) (loss.Result, error) {
		res, err := t.loss(img, txt, n, imgs)
		if l := float64(res.Loss); err == nil && (math.IsNaN(l) || math.IsInf(l, 0)) {
			err = fmt.Errorf("loss is %v; stopping (nothing saved for this step)", l)
		}
		return res, err
	}
	b.GradScale = gscale
	res, err := t.ts.Run(b)
	return float64(res.Loss), err
}

// batch hands d's pairs to the training step: token rows and decoded
// images copied into the host buffers chunk by chunk, and dropout seeds
// that depend on the seed and the chunk only, so that GradCache's second
// pass replays the first one's masks. Each chunk's images are asked for
// with the ones TrainStep will want next (the next chunk, the first again
// for GradCache's second pass, then the first chunk of next), so the
// prefetcher gathers them while this one runs.
func (t *Trainer) batch(d *Data, pairs, next []int32, seed uint64) *model.Batch {
	passes := 1
	if len(pairs) > t.planB {
		passes = 2 // GradCache forwards every chunk again for its backward
	}
	var seq [][2]int // the chunks in the order TrainStep asks for them
	for range passes {
		for lo := 0; lo < len(pairs); lo += t.planB {
			seq = append(seq, [2]int{lo, min(len(pairs), lo+t.planB)})
		}
	}
	if len(next) > 0 {
		seq = append(seq, [2]int{-1, min(len(next), t.planB)})
	}
	calls := 0
	return &model.Batch{N: len(pairs),
		Tokens: func(lo, hi int) []int32 {
			for i, p := range pairs[lo:hi] {
				copy(t.ids[i*t.ctx:(i+1)*t.ctx], d.PairTokens(int(p)))
			}
			return t.ids[:(hi-lo)*t.ctx]
		},
		Images: func(lo, hi int) []uint8 {
			calls++
			var ahead []int32
			if calls < len(seq) {
				c := seq[calls]
				if c[0] < 0 {
					ahead = imagesOf(d, next[:c[1]])
				} else {
					ahead = imagesOf(d, pairs[c[0]:c[1]])
				}
			}
			return t.fetch.get(d, imagesOf(d, pairs[lo:hi]), ahead)
		},
		Norm: &t.norm,
		Dropout: func(lo int) (uint64, uint64) {
			s := mix(seed, uint64(lo))
			return mix(s, 1), mix(s, 2)
		},
	}
}

// imagesOf is the image of each of d's pairs.
func imagesOf(d *Data, pairs []int32) []int32 {
	imgs := make([]int32, len(pairs))
	for i, p := range pairs {
		imgs[i] = d.PairImage[p]
	}
	return imgs
}

// loss is the configured loss (InfoNCE or sigmoid) with the configured
// multiplier, bias, mask and prefixes; mrl_weights, when given, weight each
// prefix's loss.
func (t *Trainer) loss(img, txt []float32, n int, imageIDs []int64) (loss.Result, error) {
	o := loss.Options{ImageIDs: imageIDs}
	if t.learn {
		o.LogitScale = t.m.LogitScale()
	} else {
		o.Temperature = float32(t.cfg.Temperature)
	}
	f := loss.InfoNCE
	if t.sigmoid {
		f = loss.Sigmoid
		o.LogitBias = t.m.LogitBias()
	}
	if !t.cfg.UseMRL {
		return f(img, txt, n, t.D, o)
	}
	if len(t.cfg.MRLWeights) == 0 {
		o.Dims = t.cfg.MRLDims
		return f(img, txt, n, t.D, o)
	}
	var sum loss.Result
	for k, d := range t.cfg.MRLDims {
		o.Dims = []int{d}
		r, err := f(img, txt, n, t.D, o)
		if err != nil {
			return sum, err
		}
		w := float32(t.cfg.MRLWeights[k])
		if sum.DImg == nil {
			sum.DImg = make([]float32, len(r.DImg))
			sum.DTxt = make([]float32, len(r.DTxt))
			sum.Scale = r.Scale
		}
		sum.Loss += w * r.Loss
		sum.PerDim = append(sum.PerDim, r.Loss)
		sum.DLogitScale += w * r.DLogitScale
		sum.DLogitBias += w * r.DLogitBias
		for i := range r.DImg {
			sum.DImg[i] += w * r.DImg[i]
			sum.DTxt[i] += w * r.DTxt[i]
		}
	}
	return sum, nil
}

func human(n int) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
