package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/safetensors"
)

// Param is one model tensor under its Hugging Face (or PEFT) name.
type Param struct {
	Name  string
	Shape []int       // PyTorch shape; [] for the scalar logit_scale
	W     backend.Buf // value
	G     backend.Buf // gradient: nil until ZeroGrads, and nil while frozen
	// Trainable: the backward pass computes G. Frozen parameters get no
	// gradient at all (nil dW / dBias to the backend).
	Trainable bool
	// Decay: weight decay applies (2-D and larger tensors only).
	Decay bool
}

// Len is the number of elements.
func (p *Param) Len() int {
	n := 1
	for _, d := range p.Shape {
		n *= d
	}
	return n
}

// Tensor is a host copy of a tensor: its shape and float32 values.
type Tensor struct {
	Shape []int
	Data  []float32
}

// linear is a Linear layer y = x·Wᵀ + b, optionally with a LoRA adapter.
type linear struct {
	path    string // Hugging Face module path, e.g. text_model.encoder.layers.0.mlp.fc1
	w, b    *Param // b is nil for the projections
	in, out int
	lora    *adapter
	id      uint64 // index among the model's linears, mixed into dropout seeds
}

type adapter struct {
	a, b    *Param // A [r,in], B [out,r]
	r       int
	scale   float32 // alpha / r
	dropout float32
}

type block struct {
	ln1w, ln1b, ln2w, ln2b *Param
	q, k, v, o, fc1, fc2   *linear
}

// linears are the block's linear layers, attention's then the MLP's.
func (b *block) linears() [6]*linear { return [6]*linear{b.q, b.k, b.v, b.o, b.fc1, b.fc2} }

type tower struct {
	C, I, NH, L int
	eps         float32
	act         backend.Activation // the MLP's (hidden_act)
	blocks      []*block
	lnW, lnB    *Param  // final_layer_norm (text) / post_layernorm (vision)
	proj        *linear // text_projection / visual_projection
}

// Model is a CLIP dual encoder whose tensors live in a backend.
type Model struct {
	cfg Config
	be  backend.Backend

	params []*Param
	byName map[string]*Param
	lins   []*linear

	// text tower
	text           tower
	tokEmb, txtPos *Param
	// vision tower
	vision             tower
	patch, cls, visPos *Param
	preLNW, preLNB     *Param
	logitScale         *Param
	// SigLIP only (nil for CLIP): the patch embedding's bias, the vision
	// attention-pooling head and logit_bias.
	patchB    *Param
	mapHead   *poolHead
	logitBias *Param
	lora      *LoRAConfig
	gen       int // bumped by ApplyLoRA: plans built before are stale

	work         workspace   // shared by the plans
	recomputeMLP bool        // for plans made from now on (RecomputeMLP)
	grads        backend.Buf // every gradient in ZeroGrads' layout (views of it)
	gradOf       []*Param    // the parameters whose gradients grads holds, in order
}

// RecomputeMLP sets whether training plans made from now on keep each
// layer's MLP hidden activations [B·T, intermediate_size] for the backward
// (off, the default) or recompute them there from the layer's saved input
// (on): one more fc1 product per layer in the backward, about a sixth more
// matrix work with frozen weights, for the largest activation of every
// layer (about 1.75 GiB for ViT-B/32 at batch 128).
func (m *Model) RecomputeMLP(on bool) { m.recomputeMLP = on }

// Config returns the model's configuration.
func (m *Model) Config() Config { return m.cfg }

// Backend returns the backend holding the model's buffers.
func (m *Model) Backend() backend.Backend { return m.be }

// Params lists every parameter (base tensors in a fixed order, then LoRA
// adapters once applied). The pointers are live: the trainer may read W
// and G and call SetTrainable, never change Shape.
func (m *Model) Params() []*Param { return m.params }

// Param returns the parameter with the given name, or nil.
func (m *Model) Param(name string) *Param { return m.byName[name] }

func (m *Model) newParam(name string, decay bool, shape ...int) *Param {
	if shape == nil {
		shape = []int{} // a scalar, stored as shape [] like PyTorch
	}
	p := &Param{Name: name, Shape: shape, Trainable: true, Decay: decay}
	p.W = m.be.Alloc(max(p.Len(), 1))
	m.params = append(m.params, p)
	m.byName[name] = p
	return p
}

func (m *Model) newLinear(path string, in, out int, bias bool) *linear {
	l := &linear{path: path, in: in, out: out, id: uint64(len(m.lins))}
	l.w = m.newParam(path+".weight", true, out, in)
	if bias {
		l.b = m.newParam(path+".bias", false, out)
	}
	m.lins = append(m.lins, l)
	return l
}

func (m *Model) newTower(prefix string, C, I, NH, L int, eps float64, act backend.Activation) tower {
	t := tower{C: C, I: I, NH: NH, L: L, eps: float32(eps), act: act}
	for i := range L {
		p := fmt.Sprintf("%s.encoder.layers.%d.", prefix, i)
		b := &block{}
		b.ln1w = m.newParam(p+"layer_norm1.weight", false, C)
		b.ln1b = m.newParam(p+"layer_norm1.bias", false, C)
		b.k = m.newLinear(p+"self_attn.k_proj", C, C, true)
		b.v = m.newLinear(p+"self_attn.v_proj", C, C, true)
		b.q = m.newLinear(p+"self_attn.q_proj", C, C, true)
		b.o = m.newLinear(p+"self_attn.out_proj", C, C, true)
		b.ln2w = m.newParam(p+"layer_norm2.weight", false, C)
		b.ln2b = m.newParam(p+"layer_norm2.bias", false, C)
		b.fc1 = m.newLinear(p+"mlp.fc1", C, I, true)
		b.fc2 = m.newLinear(p+"mlp.fc2", I, C, true)
		t.blocks = append(t.blocks, b)
	}
	return t
}

// build allocates every parameter (zero-filled) for cfg.
func build(cfg Config, be backend.Backend) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Model{cfg: cfg, be: be, byName: map[string]*Param{}}
	tc, vc, D := cfg.Text, cfg.Vision, cfg.ProjectionDim
	textAct, err := backend.ParseActivation(tc.HiddenAct)
	if err != nil {
		return nil, fmt.Errorf("config: text_config.hidden_act: %w", err)
	}
	visionAct, err := backend.ParseActivation(vc.HiddenAct)
	if err != nil {
		return nil, fmt.Errorf("config: vision_config.hidden_act: %w", err)
	}
	if cfg.IsSigLIP() {
		m.buildSigLIP(textAct, visionAct)
		return m, nil
	}

	m.tokEmb = m.newParam("text_model.embeddings.token_embedding.weight", true, tc.VocabSize, tc.HiddenSize)
	m.txtPos = m.newParam("text_model.embeddings.position_embedding.weight", true, tc.MaxPositionEmbeddings, tc.HiddenSize)
	m.text = m.newTower("text_model", tc.HiddenSize, tc.IntermediateSize, tc.NumAttentionHeads, tc.NumHiddenLayers, tc.LayerNormEps, textAct)
	m.text.lnW = m.newParam("text_model.final_layer_norm.weight", false, tc.HiddenSize)
	m.text.lnB = m.newParam("text_model.final_layer_norm.bias", false, tc.HiddenSize)

	P := vc.PatchSize
	m.cls = m.newParam("vision_model.embeddings.class_embedding", false, vc.HiddenSize)
	m.patch = m.newParam("vision_model.embeddings.patch_embedding.weight", true, vc.HiddenSize, vc.NumChannels, P, P)
	m.visPos = m.newParam("vision_model.embeddings.position_embedding.weight", true, vc.SeqLen(), vc.HiddenSize)
	m.preLNW = m.newParam("vision_model.pre_layrnorm.weight", false, vc.HiddenSize)
	m.preLNB = m.newParam("vision_model.pre_layrnorm.bias", false, vc.HiddenSize)
	m.vision = m.newTower("vision_model", vc.HiddenSize, vc.IntermediateSize, vc.NumAttentionHeads, vc.NumHiddenLayers, vc.LayerNormEps, visionAct)
	m.vision.lnW = m.newParam("vision_model.post_layernorm.weight", false, vc.HiddenSize)
	m.vision.lnB = m.newParam("vision_model.post_layernorm.bias", false, vc.HiddenSize)

	m.vision.proj = m.newLinear("visual_projection", vc.HiddenSize, D, false)
	m.text.proj = m.newLinear("text_projection", tc.HiddenSize, D, false)
	m.logitScale = m.newParam("logit_scale", false)
	return m, nil
}

// New builds a model from cfg with random weights, following Hugging Face's
// CLIPPreTrainedModel._init_weights (initializer_factor 1): embeddings
// N(0, 0.02) (class embedding N(0, C^-½)), attention q/k/v
// N(0, C^-½·(2L)^-½) and out_proj N(0, C^-½), fc1 N(0, (2C)^-½), fc2
// N(0, C^-½·(2L)^-½), projections N(0, C^-½), biases 0, layer norms 1/0,
// logit_scale = logit_scale_init_value. The same seed gives the same weights.
func New(cfg Config, be backend.Backend, seed uint64) (*Model, error) {
	m, err := build(cfg, be)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0x636c6970))
	if cfg.IsSigLIP() {
		m.initSigLIP(rng)
		return m, nil
	}
	normal := func(p *Param, std float64) {
		v := make([]float32, p.Len())
		for i := range v {
			v[i] = float32(rng.NormFloat64() * std)
		}
		be.Upload(p.W, v)
	}
	fill := func(p *Param, x float32) {
		v := make([]float32, p.Len())
		for i := range v {
			v[i] = x
		}
		be.Upload(p.W, v)
	}
	initTower := func(t *tower) {
		C, L := float64(t.C), float64(t.L)
		inStd := math.Pow(C, -0.5) * math.Pow(2*L, -0.5)
		for _, b := range t.blocks {
			fill(b.ln1w, 1)
			fill(b.ln2w, 1)
			normal(b.q.w, inStd)
			normal(b.k.w, inStd)
			normal(b.v.w, inStd)
			normal(b.o.w, math.Pow(C, -0.5))
			normal(b.fc1.w, math.Pow(2*C, -0.5))
			normal(b.fc2.w, inStd)
		}
		fill(t.lnW, 1)
		normal(t.proj.w, math.Pow(C, -0.5))
	}
	normal(m.tokEmb, 0.02)
	normal(m.txtPos, 0.02)
	initTower(&m.text)
	normal(m.cls, math.Pow(float64(cfg.Vision.HiddenSize), -0.5))
	normal(m.patch, 0.02)
	normal(m.visPos, 0.02)
	fill(m.preLNW, 1)
	initTower(&m.vision)
	fill(m.logitScale, float32(cfg.LogitScaleInitValue))
	return m, nil
}

// Load reads a Hugging Face CLIP checkpoint directory: config.json and
// model.safetensors (F32, F16 or BF16; unknown tensors such as
// text_model.embeddings.position_ids are ignored). A missing or mis-shaped
// tensor is an error naming it and both shapes.
func Load(dir string, be backend.Backend) (*Model, error) {
	cfg, err := LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "model.safetensors")
	if _, err := os.Stat(path); err != nil {
		if _, e2 := os.Stat(filepath.Join(dir, "pytorch_model.bin")); e2 == nil {
			return nil, fmt.Errorf("model %s: only pytorch_model.bin found; clipline reads model.safetensors (convert the checkpoint, or download the safetensors revision)", dir)
		}
		return nil, fmt.Errorf("model %s: %w", dir, err)
	}
	f, err := safetensors.Load(path)
	if err != nil {
		return nil, err
	}
	m, err := build(cfg, be)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", dir, err)
	}
	if err := m.setTensors(path, f.Tensors, ""); err != nil {
		return nil, err
	}
	return m, nil
}

// setTensors uploads the named tensors (prefix+param name) for every base
// parameter, checking shapes.
func (m *Model) setTensors(src string, ts map[string]safetensors.Tensor, prefix string) error {
	for _, p := range m.params {
		if isLoRAName(p.Name) {
			continue
		}
		t, ok := ts[prefix+p.Name]
		if !ok {
			return fmt.Errorf("%s: tensor %s is missing (config expects shape %v)", src, prefix+p.Name, p.Shape)
		}
		if !shapeMatches(t.Shape, p.Shape) {
			return fmt.Errorf("%s: tensor %s has shape %v, config expects %v", src, prefix+p.Name, t.Shape, p.Shape)
		}
		v, err := t.Float32()
		if err != nil {
			return fmt.Errorf("%s: tensor %s: %w", src, prefix+p.Name, err)
		}
		m.be.Upload(p.W, v)
	}
	return nil
}

// shapeMatches compares shapes, treating a scalar and a one-element vector
// as the same (older checkpoints store logit_scale as [1]).
func shapeMatches(got, want []int) bool {
	if slices.Equal(got, want) {
		return true
	}
	n := func(s []int) int {
		k := 1
		for _, d := range s {
			k *= d
		}
		return k
	}
	return len(want) == 0 && n(got) == 1
}

// Save writes config.json and model.safetensors (F32) into dir, creating it.
// With LoRA applied the weights are merged (MergedTensors), so the result
// is a plain checkpoint that transformers loads as CLIPModel.
func (m *Model) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	ts := map[string]safetensors.Tensor{}
	for name, t := range m.MergedTensors() {
		ts[name] = safetensors.F32(t.Shape, t.Data)
	}
	if err := safetensors.Save(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("save model %s: %w", dir, err)
	}
	return SaveConfig(filepath.Join(dir, "config.json"), m.cfg)
}

// download returns a host copy of p's value.
func (m *Model) download(p *Param) []float32 {
	v := make([]float32, p.Len())
	m.be.Download(v, p.W)
	return v
}

// LogitScale returns the logit_scale parameter (the log of the logit
// multiplier), read from the backend.
func (m *Model) LogitScale() float32 { return m.scalar(m.logitScale) }

// scalar reads a one-element parameter.
func (m *Model) scalar(p *Param) float32 {
	var v [1]float32
	m.be.Download(v[:], p.W)
	return v[0]
}

// AddLogitScaleGrad adds d to logit_scale's gradient (the loss is computed
// on the host, so its gradient arrives as a number). A no-op while
// logit_scale is frozen.
func (m *Model) AddLogitScaleGrad(d float32) { m.addScalarGrad(m.logitScale, d) }

// addScalarGrad adds d to a one-element parameter's gradient, unless it is
// frozen (or nil).
func (m *Model) addScalarGrad(p *Param, d float32) {
	g := m.grad(p)
	if g == nil {
		return
	}
	var v [1]float32
	m.be.Download(v[:], g)
	v[0] += d
	m.be.Upload(g, v[:])
}

// ZeroGrads zeroes the gradients of trainable parameters and releases
// those of frozen ones. Call it once per optimizer step. The gradients are
// views of one buffer (laid out again when the set of trainable parameters
// changes), so zeroing them is one operation, not one per tensor; while
// that set stays the same, every Param.G stays the same buffer.
func (m *Model) ZeroGrads() {
	var trainable []*Param
	total := 0
	for _, p := range m.params {
		if p.Trainable {
			trainable = append(trainable, p)
			total += max(p.Len(), 1)
		}
	}
	if !slices.Equal(trainable, m.gradOf) {
		m.freeGrads()
		m.gradOf = trainable
		if total > 0 {
			m.grads = m.be.Alloc(total)
		}
		off := 0
		for _, p := range trainable {
			n := max(p.Len(), 1)
			p.G = m.grads.Slice(off, n)
			off += n
		}
		return // Alloc zero-fills
	}
	if m.grads != nil {
		m.be.Zero(m.grads)
	}
}

// freeGrads releases every gradient: the shared buffer and any a backward
// pass allocated on its own (grad) since.
func (m *Model) freeGrads() {
	for _, p := range m.params {
		if p.G != nil && !slices.Contains(m.gradOf, p) {
			m.be.Free(p.G)
		}
		p.G = nil
	}
	if m.grads != nil {
		m.be.Free(m.grads)
		m.grads = nil
	}
	m.gradOf = nil
}

// grad is the gradient buffer the backward pass accumulates into for p, or
// nil when p is frozen. Trainable parameters without a gradient buffer yet
// get a zeroed one.
func (m *Model) grad(p *Param) backend.Buf {
	if p == nil || !p.Trainable {
		return nil
	}
	if p.G == nil {
		p.G = m.be.Alloc(max(p.Len(), 1))
	}
	return p.G
}

// SetTrainable sets Trainable on every parameter whose name satisfies match
// and returns how many matched. Frozen parameters get no gradient; their G
// is released by the next ZeroGrads.
func (m *Model) SetTrainable(trainable bool, match func(name string) bool) int {
	k := 0
	for _, p := range m.params {
		if match(p.Name) {
			p.Trainable = trainable
			k++
		}
	}
	return k
}

// NameHasPrefix returns a matcher for SetTrainable: names starting with any
// of the prefixes (e.g. "text_model.", "vision_model.embeddings.").
func NameHasPrefix(prefixes ...string) func(string) bool {
	return func(name string) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
		return false
	}
}

// NumParams counts parameter elements: all, and trainable ones.
func (m *Model) NumParams() (total, trainable int) {
	for _, p := range m.params {
		total += p.Len()
		if p.Trainable {
			trainable += p.Len()
		}
	}
	return
}

// Free releases every parameter and gradient buffer and the plans'
// shared workspace.
func (m *Model) Free() {
	m.freeWork()
	m.freeGrads()
	for _, p := range m.params {
		m.be.Free(p.W)
		p.W = nil
	}
}
