// Package config holds the training configuration of the train stage, read
// from YAML with the keys vembed-factory users already write
// (model_name_or_path, use_lora, lora_r, batch_size, learning_rate, ...).
//
// Sources, lowest to highest precedence:
//
//	defaults < config file (--config) < --set key=value < command-line flags
//
// An unknown key is never dropped silently: it produces a warning naming it
// (with a suggestion when it looks like a typo). Keys that vembed-factory
// knows but clipline has no use for (encoder_mode, ...) get a warning saying
// why they are ignored, unless their value asks for nothing clipline lacks
// (encoder_mode: auto); so does a report_to other than tensorboard or none. A value of the wrong type or out of
// range is an error naming the key, the value and where it came from: the
// file and line, the --set argument, the flag, or the default (Loaded.Where).
// bf16 and fp16 ask for the device's reduced-precision mode (precision.go).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Config is the full training configuration. Field tags are the YAML keys.
type Config struct {
	// Model.
	ModelNameOrPath string `yaml:"model_name_or_path"`

	// LoRA (PEFT semantics: W x + (alpha/r) B A x).
	UseLoRA           bool     `yaml:"use_lora"`
	LoRAR             int      `yaml:"lora_r"`
	LoRAAlpha         float64  `yaml:"lora_alpha"`
	LoRADropout       float64  `yaml:"lora_dropout"`
	LoRATargetModules []string `yaml:"lora_target_modules"`

	// Output.
	OutputDir string `yaml:"output_dir"`
	// OverwriteOutputDir lets a run start in a non-empty output_dir,
	// removing the files an earlier clipline run wrote there (--overwrite).
	OverwriteOutputDir bool `yaml:"overwrite_output_dir"`

	// Optimisation.
	Epochs                    int     `yaml:"epochs"`
	BatchSize                 int     `yaml:"batch_size"`
	LearningRate              float64 `yaml:"learning_rate"`
	WeightDecay               float64 `yaml:"weight_decay"`
	MaxGradNorm               float64 `yaml:"max_grad_norm"`
	GradientAccumulationSteps int     `yaml:"gradient_accumulation_steps"`
	Seed                      int64   `yaml:"seed"`
	// MaxSteps > 0 ends the run after that many optimizer steps, overriding
	// epochs; the learning-rate schedule spans it (Hugging Face's max_steps).
	MaxSteps int `yaml:"max_steps"`

	// Learning-rate schedule (Hugging Face get_scheduler semantics).
	SchedulerType string  `yaml:"scheduler_type"`
	WarmupRatio   float64 `yaml:"warmup_ratio"`
	WarmupSteps   int     `yaml:"warmup_steps"`

	// Loss. loss_type is infonce (CLIP) or sigmoid (SigLIP, which needs a
	// model with logit_bias); learn_temperature trains logit_scale (and the
	// sigmoid loss's logit_bias), else logits are cosine/temperature.
	LossType         string  `yaml:"loss_type"`
	Temperature      float64 `yaml:"temperature"`
	LearnTemperature bool    `yaml:"learn_temperature"`

	// Memory.
	UseGradientCache       bool `yaml:"use_gradient_cache"`
	GradientCacheChunkSize int  `yaml:"gradient_cache_chunk_size"`
	// RecomputeMLP: recompute each layer's MLP hidden activations in the
	// backward instead of keeping them (model.Model.RecomputeMLP).
	RecomputeMLP bool `yaml:"recompute_mlp"`

	// Matryoshka representation learning.
	UseMRL     bool      `yaml:"use_mrl"`
	MRLDims    []int     `yaml:"mrl_dims"`
	MRLWeights []float64 `yaml:"mrl_weights"`

	// Logging, checkpoints, evaluation.
	LoggingSteps int    `yaml:"logging_steps"`
	SaveSteps    int    `yaml:"save_steps"`
	SaveStrategy string `yaml:"save_strategy"`
	EvalStrategy string `yaml:"eval_strategy"`
	EvalSteps    int    `yaml:"eval_steps"`
	// SaveTotalLimit > 0 keeps only the newest checkpoint-STEP directories
	// (best/ and final/ are always kept).
	SaveTotalLimit int `yaml:"save_total_limit"`
	// SaveOnlyModel writes checkpoints without optimizer state: smaller,
	// but they cannot be resumed.
	SaveOnlyModel bool `yaml:"save_only_model"`
	// ReportTo "tensorboard" also writes the logged metrics as TensorBoard
	// event files under output_dir/runs (Hugging Face's report_to); unset
	// (none) it is left out of the rendered config, which thus reads as
	// before the key existed.
	ReportTo string `yaml:"report_to,omitempty"`

	// Data files, vembed-factory's way: train prepares, tokenizes and
	// decodes them itself (internal/traindata) instead of reading --in.
	// data_path and val_data_path are JSONL, Karpathy JSON, Flickr30k CSV
	// or clipline streams; image_root resolves their relative image paths.
	DataPath    string `yaml:"data_path"`
	ValDataPath string `yaml:"val_data_path"`
	ImageRoot   string `yaml:"image_root"`
	// CacheDir is where train spools an input it cannot memory-map as it
	// is (stdin, a stream-format or compressed file, rows without pixels)
	// as an uncompressed Arrow IPC file; unset: output_dir/cache, cleaned
	// up by train. Unset it is left out of the rendered config.
	CacheDir string `yaml:"cache_dir,omitempty"`

	// clipline's own keys.
	TrainSplit string `yaml:"train_split"`
	ValSplit   string `yaml:"val_split"`
	Device     string `yaml:"device"`
}

// DefaultTargetModules are the LoRA targets when lora_target_modules is
// unset: the attention projections of both towers, as in the PEFT examples
// for CLIP.
var DefaultTargetModules = []string{"q_proj", "k_proj", "v_proj", "out_proj"}

// Default returns the defaults, which follow vembed-factory's
// configs/defaults.yaml where it has the key, and Hugging Face's
// TrainingArguments otherwise.
func Default() Config {
	return Config{
		ModelNameOrPath:           "",
		UseLoRA:                   true,
		LoRAR:                     16,
		LoRAAlpha:                 32,
		LoRADropout:               0.05,
		LoRATargetModules:         append([]string(nil), DefaultTargetModules...),
		OutputDir:                 "output",
		Epochs:                    3,
		BatchSize:                 32,
		LearningRate:              2e-5,
		WeightDecay:               0.01,
		MaxGradNorm:               1.0,
		GradientAccumulationSteps: 1,
		Seed:                      42,
		SchedulerType:             "cosine",
		WarmupRatio:               0.1,
		WarmupSteps:               0,
		LossType:                  "infonce",
		Temperature:               0.05,
		LearnTemperature:          false,
		UseGradientCache:          false,
		GradientCacheChunkSize:    8,
		UseMRL:                    false,
		MRLDims:                   nil,
		LoggingSteps:              10,
		SaveSteps:                 0,
		SaveStrategy:              "epoch",
		EvalStrategy:              "epoch",
		EvalSteps:                 0,
		TrainSplit:                "train",
		ValSplit:                  "val",
		Device:                    "cpu",
	}
}

// Source says where a key's value came from.
type Source int

const (
	FromDefault Source = iota
	FromFile
	FromSet
	FromFlag
)

func (s Source) String() string {
	switch s {
	case FromFile:
		return "config file"
	case FromSet:
		return "--set"
	case FromFlag:
		return "command-line flag"
	}
	return "default"
}

// Options are the inputs of Load.
type Options struct {
	// File is the YAML config path ("" for none).
	File string
	// Sets are --set arguments, each "key=value"; the value is parsed as a
	// YAML scalar or flow sequence ("[q_proj, v_proj]"), and list keys also
	// accept comma-separated values ("q_proj,v_proj").
	Sets []string
	// Flags are values given by dedicated command-line flags (--model,
	// --out, --device, ...), applied in order. Only flags the user actually
	// gave count, so a flag's default never hides the file: a Flag with an
	// empty Value is skipped.
	Flags []Flag
	// Warn receives warnings, one line each (nil: os.Stderr).
	Warn io.Writer
}

// Flag is one command-line flag that sets a config key.
type Flag struct {
	Key   string // config key, e.g. "model_name_or_path"
	Name  string // the flag as the user types it, e.g. "--model"
	Value string // "" when the flag was not given
}

// Loaded is the result of Load: the configuration, where each key came
// from, and the warnings that were printed.
type Loaded struct {
	Config   Config
	Sources  map[string]Source
	Warnings []string
	where    map[string]string // key -> file:line, "--set k=v" or "flag --x"
	text     map[string]string // key -> the value as written there
	prec     precision         // bf16 / fp16 requests, applied after merging
}

// Where says where key's value came from: "FILE:LINE", "--set key=value",
// "flag --name", or "default".
func (l *Loaded) Where(key string) string {
	if w := l.where[key]; w != "" {
		return w
	}
	return "default"
}

// Locate fills in where the key of a *ValueError in err came from, for
// checks made after Load (e.g. against the model), and returns the error
// with that message (wrapping text around it is kept).
func (l *Loaded) Locate(err error) error {
	var ve *ValueError
	if !errors.As(err, &ve) || ve.Where != "" || l.where[ve.Key] == "" {
		return err
	}
	loc := *ve
	loc.Source, loc.Where = l.Sources[ve.Key], l.where[ve.Key]
	if t, ok := l.text[ve.Key]; ok {
		loc.Value = t
	}
	if err == error(ve) {
		return &loc
	}
	// Wrapping errors fixed their text when made: rewrite it.
	return &locatedError{msg: strings.Replace(err.Error(), ve.Error(), loc.Error(), 1), ve: &loc}
}

type locatedError struct {
	msg string
	ve  *ValueError
}

func (e *locatedError) Error() string { return e.msg }
func (e *locatedError) Unwrap() error { return e.ve }

// field describes one key of Config.
type field struct {
	key   string
	index int
	typ   reflect.Type
}

var fields, fieldByKey = func() ([]field, map[string]field) {
	t := reflect.TypeOf(Config{})
	var fs []field
	m := map[string]field{}
	for i := 0; i < t.NumField(); i++ {
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		f := field{key: key, index: i, typ: t.Field(i).Type}
		fs = append(fs, f)
		m[f.key] = f
	}
	return fs, m
}()

// Keys lists every configuration key clipline reads, in declaration order.
func Keys() []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.key
	}
	return out
}

// aliases map other spellings users write (Hugging Face TrainingArguments
// names, vembed-factory's "lr") to clipline's keys.
var aliases = map[string]string{
	"lr":                          "learning_rate",
	"num_train_epochs":            "epochs",
	"per_device_train_batch_size": "batch_size",
	"lr_scheduler_type":           "scheduler_type",
	"evaluation_strategy":         "eval_strategy",
	"model_name":                  "model_name_or_path",
}

// ignored are vembed-factory keys with no meaning in clipline, with why,
// and the values that ask for nothing clipline lacks (the tutorial's
// encoder_mode: auto), which pass without a word.
var ignored = map[string]ignoredKey{
	"encoder_mode":             {"clipline trains CLIP dual encoders only", []string{"auto", "clip"}},
	"torch_distributed_debug":  {"clipline trains on one device", []string{"no", "false", "off", "", "detail_off"}},
	"torch_dtype":              {"weights are kept in float32; reduced precision is the device's (bf16: true, --device cuda,bf16)", []string{"float32", "fp32", "auto"}},
	"attn_implementation":      {"the backend chooses its attention kernel", nil},
	"max_seq_length":           {"the context length is the model's (tokenize sets it)", nil},
	"max_image_size":           {"the image size is the model's (decode sets it)", nil},
	"retrieval_mode":           {"clipline trains text-to-image retrieval (the loss is symmetric)", []string{"t2i"}},
	"pooling_method":           {"CLIP pools at the end-of-text and class tokens", nil},
	"projection_dim":           {"the projection is the model's", nil},
	"topk_tokens":              {"clipline has no late-interaction models", nil},
	"dataloader_num_workers":   {"decoding uses all cores", nil},
	"teacher_model_name":       {"distillation is not implemented", []string{""}},
	"distillation_alpha":       {"distillation is not implemented", nil},
	"distillation_temperature": {"distillation is not implemented", nil},
	"distillation_loss_type":   {"distillation is not implemented", nil},
}

type ignoredKey struct {
	why  string
	noop []string // lower-case values that need no message
}

// Load merges defaults, the config file, --set values and flags, validates
// the result, and prints a warning for every unknown or ignored key.
func Load(o Options) (*Loaded, error) {
	warn := o.Warn
	if warn == nil {
		warn = os.Stderr
	}
	l := &Loaded{Config: Default(), Sources: map[string]Source{}, where: map[string]string{}, text: map[string]string{}}
	for _, f := range fields {
		l.Sources[f.key] = FromDefault
	}
	warnf := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		l.Warnings = append(l.Warnings, msg)
		fmt.Fprintln(warn, "warning: "+msg)
	}

	if o.File != "" {
		raw, err := os.ReadFile(o.File)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if err := l.applyYAML(raw, o.File, warnf); err != nil {
			return nil, err
		}
	}
	for _, s := range o.Sets {
		k, v, ok := strings.Cut(s, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("config: --set %q: want key=value", s)
		}
		if err := l.applyString(k, v, FromSet, "--set "+s, warnf); err != nil {
			return nil, err
		}
	}
	for _, f := range o.Flags {
		if f.Value == "" {
			continue
		}
		if err := l.applyString(f.Key, f.Value, FromFlag, "flag "+f.Name, warnf); err != nil {
			return nil, err
		}
	}
	if err := l.Config.Validate(); err != nil {
		return nil, l.Locate(err)
	}
	l.applyPrecision(func(format string, args ...any) {
		fmt.Fprintf(warn, "config: "+format+"\n", args...)
	})
	return l, nil
}

// applyYAML applies a config file's top-level mapping.
func (l *Loaded) applyYAML(raw []byte, name string, warnf func(string, ...any)) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("config %s: %w", name, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // empty file: nothing to apply
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("config %s: line %d: want a mapping of key: value, got a %s", name, root.Line, kindName(root))
	}
	seen := map[string]string{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		kn, vn := root.Content[i], root.Content[i+1]
		where := fmt.Sprintf("%s:%d", name, kn.Line)
		key, ok := l.resolveKey(kn.Value, scalarText(vn), where, warnf)
		if !ok {
			continue
		}
		if prev, dup := seen[key]; dup {
			return fmt.Errorf("config %s: %s and %s (line %d) both set %s", name, prev, kn.Value, kn.Line, key)
		}
		seen[key] = kn.Value
		if err := l.setNode(key, vn, FromFile, where); err != nil {
			return err
		}
	}
	return nil
}

// applyString applies one key=value from --set or a flag.
func (l *Loaded) applyString(key, val string, src Source, where string, warnf func(string, ...any)) error {
	key, ok := l.resolveKey(key, val, where, warnf)
	if !ok {
		return nil
	}
	f, isField := fieldByKey[key]
	var n yaml.Node
	if strings.TrimSpace(val) == "" {
		n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: ""}
	} else if err := yaml.Unmarshal([]byte(val), &n); err != nil || len(n.Content) == 0 {
		// Not valid YAML (e.g. "a: b"): take it as a plain string.
		n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: val}
	} else {
		n = *n.Content[0]
	}
	// List keys accept "a,b,c" as well as "[a, b, c]".
	if isField && f.typ.Kind() == reflect.Slice && n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		seq := yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, part := range strings.Split(val, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			var item yaml.Node
			if err := yaml.Unmarshal([]byte(part), &item); err != nil || len(item.Content) == 0 {
				item = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: part}
			} else {
				item = *item.Content[0]
			}
			seq.Content = append(seq.Content, &item)
		}
		n = seq
	}
	return l.setNode(key, &n, src, where)
}

// resolveKey maps aliases to keys and warns about unknown or ignored keys
// (an ignored key with a no-op value, val, passes silently); ok is false
// when the key is to be skipped.
func (l *Loaded) resolveKey(k, val, where string, warnf func(string, ...any)) (string, bool) {
	if r := normReportTo(val); k == "report_to" && r != "" && r != "tensorboard" {
		warnf("%s: key %q ignored: %s is not supported; report_to: tensorboard writes TensorBoard event files, and output_dir/metrics.jsonl is always written",
			where, k, strings.TrimSpace(val))
		return "", false
	}
	if _, ok := fieldByKey[k]; ok {
		return k, true
	}
	if a, ok := aliases[k]; ok {
		return a, true
	}
	if _, ok := precisionKeys[k]; ok {
		return k, true
	}
	if ig, ok := ignored[k]; ok {
		if !slices.Contains(ig.noop, strings.ToLower(strings.TrimSpace(val))) {
			warnf("%s: key %q ignored: %s", where, k, ig.why)
		}
		return "", false
	}
	if s := suggest(k); s != "" {
		warnf("%s: unknown key %q ignored (did you mean %q?)", where, k, s)
	} else {
		warnf("%s: unknown key %q ignored", where, k)
	}
	return "", false
}

// setNode decodes n into key's field; null restores the default.
func (l *Loaded) setNode(key string, n *yaml.Node, src Source, where string) error {
	if _, ok := precisionKeys[key]; ok {
		return l.prec.set(key, n, src, where)
	}
	f := fieldByKey[key]
	dst := reflect.ValueOf(&l.Config).Elem().Field(f.index)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		def := Default()
		dst.Set(reflect.ValueOf(def).Field(f.index))
		l.Sources[key] = src
		l.where[key] = where
		delete(l.text, key)
		return nil
	}
	v := reflect.New(f.typ)
	if err := decodeStrict(n, v.Interface(), f.typ); err != nil {
		return &ValueError{Key: key, Value: nodeText(n), Source: src, Where: where, Reason: err.Error()}
	}
	dst.Set(v.Elem())
	l.Sources[key] = src
	l.where[key] = where
	l.text[key] = nodeText(n)
	return nil
}

// decodeStrict decodes n into ptr, refusing the silent conversions yaml.v3
// allows (a mapping into a string, a float into an int).
func decodeStrict(n *yaml.Node, ptr any, typ reflect.Type) error {
	want := typeName(typ)
	switch typ.Kind() {
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return fmt.Errorf("want %s", want)
		}
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return fmt.Errorf("want %s", want)
			}
		}
	default:
		if n.Kind != yaml.ScalarNode {
			return fmt.Errorf("want %s", want)
		}
	}
	switch typ.Kind() {
	case reflect.String:
		// Any scalar is a fine string ("42" as an output dir).
		reflect.ValueOf(ptr).Elem().SetString(n.Value)
		return nil
	case reflect.Int, reflect.Int64:
		// Parsed here because yaml.v3 truncates 3.5 into 3.
		x, err := strconv.ParseInt(strings.TrimSpace(n.Value), 10, 64)
		if err != nil {
			return fmt.Errorf("want %s", want)
		}
		reflect.ValueOf(ptr).Elem().SetInt(x)
		return nil
	case reflect.Slice:
		sl := reflect.ValueOf(ptr).Elem()
		if len(n.Content) == 0 {
			return nil // an empty list is nil, as the default is
		}
		sl.Set(reflect.MakeSlice(typ, len(n.Content), len(n.Content)))
		for i, c := range n.Content {
			if err := decodeStrict(c, sl.Index(i).Addr().Interface(), typ.Elem()); err != nil {
				return fmt.Errorf("want %s", want)
			}
		}
		return nil
	case reflect.Float64:
		x, err := strconv.ParseFloat(strings.TrimSpace(n.Value), 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("want %s", want)
		}
		reflect.ValueOf(ptr).Elem().SetFloat(x)
		return nil
	}
	if err := n.Decode(ptr); err != nil {
		return fmt.Errorf("want %s", want)
	}
	return nil
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return map[reflect.Kind]string{reflect.Int: "a list of integers", reflect.Float64: "a list of numbers",
			reflect.String: "a list of strings"}[t.Elem().Kind()]
	}
	return t.String()
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	case yaml.ScalarNode:
		return "scalar"
	}
	return "document"
}

// scalarText is a scalar node's text; other nodes have none ("\x00", which
// no no-op list holds).
func scalarText(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		return "\x00"
	}
	return n.Value
}

// nodeText renders a node back to one line of YAML for error messages.
func nodeText(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return n.Value
	}
	c := uncommented(n)
	c.Style = yaml.FlowStyle
	var b bytes.Buffer
	e := yaml.NewEncoder(&b)
	if err := e.Encode(&c); err != nil {
		return "?"
	}
	return strings.TrimSpace(b.String())
}

// uncommented is a copy of n without comments (which Encode would print).
func uncommented(n *yaml.Node) yaml.Node {
	c := *n
	c.HeadComment, c.LineComment, c.FootComment = "", "", ""
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, k := range n.Content {
		u := uncommented(k)
		c.Content[i] = &u
	}
	return c
}

// ValueError is a bad value for a key.
type ValueError struct {
	Key    string
	Value  string
	Source Source
	Where  string // file:line, "--set k=v", "flag --x"; "" for the default
	Reason string
}

func (e *ValueError) Error() string {
	if e.Where == "" {
		return fmt.Sprintf("config: bad value %q for %s (its default): %s", e.Value, e.Key, e.Reason)
	}
	return fmt.Sprintf("config: %s: bad value %q for %s: %s", e.Where, e.Value, e.Key, e.Reason)
}

// suggest returns the known key closest to k when it is plausibly a typo.
func suggest(k string) string {
	best, bestD := "", 1<<30
	cands := Keys()
	for k := range precisionKeys {
		cands = append(cands, k)
	}
	for a := range aliases {
		cands = append(cands, a)
	}
	sort.Strings(cands)
	for _, c := range cands {
		if d := editDistance(k, c); d < bestD {
			best, bestD = c, d
		}
	}
	if bestD <= 2 || (bestD <= 3 && len(k) >= 10) {
		if a, ok := aliases[best]; ok {
			return a
		}
		return best
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
