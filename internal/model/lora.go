package model

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/clipline/clipline/internal/safetensors"
)

// LoRAConfig configures low-rank adapters (PEFT's LoraConfig subset).
type LoRAConfig struct {
	R       int     // rank r (> 0)
	Alpha   float32 // lora_alpha; the update is scaled by Alpha/R
	Dropout float32 // lora_dropout on the adapter's input, in [0, 1)
	// Targets are module names matched as PEFT does: a linear layer whose
	// Hugging Face path equals a target or ends with "."+target. Linear
	// layers: q_proj, k_proj, v_proj, out_proj, fc1, fc2, visual_projection,
	// text_projection (or longer paths such as "vision_model.encoder.layers.0.mlp.fc1").
	// Empty means DefaultLoRATargets. A target that matches nothing is an error.
	Targets []string
	Seed    uint64 // for A's initialisation
}

// DefaultLoRATargets are the attention projections of both towers.
var DefaultLoRATargets = []string{"q_proj", "k_proj", "v_proj", "out_proj"}

// LoRAPrefix is PEFT's prefix of adapter tensor names.
const LoRAPrefix = "base_model.model."

func isLoRAName(name string) bool {
	return strings.HasPrefix(name, LoRAPrefix)
}

func targetMatches(path, target string) bool {
	return path == target || strings.HasSuffix(path, "."+target)
}

// LoRA returns the applied LoRA configuration, or nil.
func (m *Model) LoRA() *LoRAConfig { return m.lora }

// ApplyLoRA adds adapters to the targeted linear layers of both towers and
// freezes every base parameter (logit_scale included; SetTrainable unfreezes).
// A [r,in] is drawn uniformly in ±1/sqrt(in) (PEFT's
// kaiming_uniform_(a=sqrt(5))), B [out,r] is zero, so the model's outputs
// are unchanged until B trains. Plans created earlier become stale.
func (m *Model) ApplyLoRA(c LoRAConfig) error {
	if m.lora != nil {
		return fmt.Errorf("lora: already applied (r=%d)", m.lora.R)
	}
	if c.R <= 0 {
		return fmt.Errorf("lora: r = %d, must be positive", c.R)
	}
	if !(c.Alpha > 0) {
		return fmt.Errorf("lora: alpha = %v, must be positive", c.Alpha)
	}
	if !(c.Dropout >= 0 && c.Dropout < 1) {
		return fmt.Errorf("lora: dropout = %v, must be in [0, 1)", c.Dropout)
	}
	if len(c.Targets) == 0 {
		c.Targets = DefaultLoRATargets
	}
	c.Targets = append([]string(nil), c.Targets...)
	var chosen []*linear
	for _, t := range c.Targets {
		hit := false
		for _, l := range m.lins {
			if targetMatches(l.path, t) {
				hit = true
			}
		}
		if !hit {
			names := "visual_projection, text_projection"
			if m.cfg.IsSigLIP() {
				names = "head (text_model.head)"
			}
			return fmt.Errorf("lora: target module %q matches no linear layer (use q_proj, k_proj, v_proj, out_proj, fc1, fc2, %s, or a full module path)", t, names)
		}
	}
	for _, l := range m.lins {
		for _, t := range c.Targets {
			if targetMatches(l.path, t) {
				chosen = append(chosen, l)
				break
			}
		}
	}
	for _, p := range m.params {
		p.Trainable = false
	}
	rng := rand.New(rand.NewPCG(c.Seed, 0x6c6f7261))
	for _, l := range chosen {
		ad := &adapter{r: c.R, scale: c.Alpha / float32(c.R), dropout: c.Dropout}
		ad.a = m.newParam(LoRAPrefix+l.path+".lora_A.weight", true, c.R, l.in)
		ad.b = m.newParam(LoRAPrefix+l.path+".lora_B.weight", true, l.out, c.R)
		bound := 1 / math.Sqrt(float64(l.in))
		v := make([]float32, ad.a.Len())
		for i := range v {
			v[i] = float32((2*rng.Float64() - 1) * bound)
		}
		m.be.Upload(ad.a.W, v)
		l.lora = ad
	}
	m.lora = &c
	m.gen++
	return nil
}

// MergedTensors returns host copies of every base tensor under its Hugging
// Face name, with W + (alpha/r)·B·A for layers carrying an adapter: the
// weights of a plain checkpoint.
func (m *Model) MergedTensors() map[string]Tensor {
	out := map[string]Tensor{}
	for _, p := range m.params {
		if isLoRAName(p.Name) {
			continue
		}
		out[p.Name] = Tensor{Shape: append([]int(nil), p.Shape...), Data: m.download(p)}
	}
	for _, l := range m.lins {
		if l.lora == nil {
			continue
		}
		w := out[l.w.Name].Data
		a, b := m.download(l.lora.a), m.download(l.lora.b)
		r, s := l.lora.r, float64(l.lora.scale)
		row := make([]float64, l.in)
		for o := range l.out {
			clear(row)
			for k := range r {
				bk := float64(b[o*r+k])
				for i, av := range a[k*l.in : (k+1)*l.in] {
					row[i] += bk * float64(av)
				}
			}
			for i := range row {
				w[o*l.in+i] += float32(s * row[i])
			}
		}
	}
	return out
}

// LoRATensors returns host copies of the adapter tensors under PEFT's names
// (base_model.model.<module>.lora_A.weight / lora_B.weight); empty without LoRA.
func (m *Model) LoRATensors() map[string]Tensor {
	out := map[string]Tensor{}
	for _, p := range m.params {
		if isLoRAName(p.Name) {
			out[p.Name] = Tensor{Shape: append([]int(nil), p.Shape...), Data: m.download(p)}
		}
	}
	return out
}

// peftConfig is adapter_config.json as PEFT writes it for LoRA.
type peftConfig struct {
	BaseModel     string   `json:"base_model_name_or_path"`
	Bias          string   `json:"bias"`
	FanInFanOut   bool     `json:"fan_in_fan_out"`
	InferenceMode bool     `json:"inference_mode"`
	InitLoraW     bool     `json:"init_lora_weights"`
	LoraAlpha     float32  `json:"lora_alpha"`
	LoraDropout   float32  `json:"lora_dropout"`
	ModulesToSave []string `json:"modules_to_save"`
	PeftType      string   `json:"peft_type"`
	R             int      `json:"r"`
	TargetModules []string `json:"target_modules"`
	TaskType      *string  `json:"task_type"`
	UseRSLoRA     bool     `json:"use_rslora"`
	UseDoRA       bool     `json:"use_dora"`
}

// SaveAdapter writes a PEFT-format adapter into dir: adapter_config.json and
// adapter_model.safetensors (F32). baseModel is recorded as
// base_model_name_or_path.
func (m *Model) SaveAdapter(dir, baseModel string) error {
	if m.lora == nil {
		return fmt.Errorf("save adapter %s: no LoRA applied", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save adapter: %w", err)
	}
	ts := map[string]safetensors.Tensor{}
	for name, t := range m.LoRATensors() {
		ts[name] = safetensors.F32(t.Shape, t.Data)
	}
	if err := safetensors.Save(filepath.Join(dir, "adapter_model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("save adapter %s: %w", dir, err)
	}
	pc := peftConfig{BaseModel: baseModel, Bias: "none", InferenceMode: true, InitLoraW: true,
		LoraAlpha: m.lora.Alpha, LoraDropout: m.lora.Dropout, PeftType: "LORA", R: m.lora.R,
		TargetModules: m.peftTargets()}
	raw, err := json.MarshalIndent(pc, "", "  ")
	if err != nil {
		return fmt.Errorf("save adapter %s: %w", dir, err)
	}
	return writeFileAtomic(filepath.Join(dir, "adapter_config.json"), append(raw, '\n'))
}

// LoadAdapter applies the PEFT LoRA adapter in dir (adapter_config.json,
// adapter_model.safetensors) to a model without LoRA, loading A and B.
func (m *Model) LoadAdapter(dir string) error {
	cpath := filepath.Join(dir, "adapter_config.json")
	raw, err := os.ReadFile(cpath)
	if err != nil {
		return fmt.Errorf("load adapter: %w", err)
	}
	var pc peftConfig
	if err := json.Unmarshal(raw, &pc); err != nil {
		return fmt.Errorf("load adapter %s: %w", cpath, err)
	}
	if pc.PeftType != "LORA" {
		return fmt.Errorf("load adapter %s: peft_type %q, only LORA is supported", cpath, pc.PeftType)
	}
	if pc.UseDoRA || pc.UseRSLoRA || pc.FanInFanOut {
		return fmt.Errorf("load adapter %s: use_dora, use_rslora and fan_in_fan_out are not supported", cpath)
	}
	if err := m.ApplyLoRA(LoRAConfig{R: pc.R, Alpha: pc.LoraAlpha, Dropout: pc.LoraDropout, Targets: pc.TargetModules}); err != nil {
		return fmt.Errorf("load adapter %s: %w", cpath, err)
	}
	wpath := filepath.Join(dir, "adapter_model.safetensors")
	f, err := safetensors.Load(wpath)
	if err != nil {
		return fmt.Errorf("load adapter: %w", err)
	}
	for _, p := range m.params {
		if !isLoRAName(p.Name) {
			continue
		}
		t, ok := f.Tensors[p.Name]
		if !ok {
			return fmt.Errorf("%s: tensor %s is missing (expected shape %v)", wpath, p.Name, p.Shape)
		}
		if !shapeMatches(t.Shape, p.Shape) {
			return fmt.Errorf("%s: tensor %s has shape %v, expected %v", wpath, p.Name, t.Shape, p.Shape)
		}
		v, err := t.Float32()
		if err != nil {
			return fmt.Errorf("%s: tensor %s: %w", wpath, p.Name, err)
		}
		m.be.Upload(p.W, v)
	}
	return nil
}

// peftTargets is adapter_config.json's target_modules: the configured
// targets, or for SigLIP the full path of every adapted layer. PEFT matches
// a short name such as out_proj or head against every module, SigLIP's
// vision head too: it would wrap the head's nn.MultiheadAttention out_proj,
// which that module's forward reads by weight, never calling it (so the
// adapter would count only once merged), and refuse vision_model.head,
// which is no Linear. Full paths select exactly the layers trained here.
func (m *Model) peftTargets() []string {
	if !m.cfg.IsSigLIP() {
		return m.lora.Targets
	}
	var paths []string
	for _, l := range m.lins {
		if l.lora != nil {
			paths = append(paths, l.path)
		}
	}
	return paths
}
