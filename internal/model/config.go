package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"

	"github.com/clipline/clipline/internal/atomicfile"
	"github.com/clipline/clipline/internal/backend"
)

// TextConfig is the text tower part of a Hugging Face CLIP config.json
// (the "text_config" object).
type TextConfig struct {
	HiddenSize            int     // hidden_size (default 512)
	IntermediateSize      int     // intermediate_size (default 2048)
	NumAttentionHeads     int     // num_attention_heads (default 8)
	NumHiddenLayers       int     // num_hidden_layers (default 12)
	MaxPositionEmbeddings int     // max_position_embeddings (default 77): the context length
	VocabSize             int     // vocab_size (default 49408)
	HiddenAct             string  // hidden_act (default quick_gelu; also gelu, gelu_pytorch_tanh, gelu_new)
	LayerNormEps          float64 // layer_norm_eps (default 1e-5)
	// ProjectionSize is SigLIP's projection_size, the text head's output
	// width (default hidden_size); 0 for CLIP, whose width is ProjectionDim.
	ProjectionSize int

	// extra holds keys this package does not interpret (bos_token_id,
	// model_type, ...) so that Save writes them back unchanged.
	extra map[string]json.RawMessage
}

// VisionConfig is the vision tower part of a Hugging Face CLIP config.json
// (the "vision_config" object).
type VisionConfig struct {
	HiddenSize        int     // hidden_size (default 768)
	IntermediateSize  int     // intermediate_size (default 3072)
	NumAttentionHeads int     // num_attention_heads (default 12)
	NumHiddenLayers   int     // num_hidden_layers (default 12)
	ImageSize         int     // image_size (default 224)
	PatchSize         int     // patch_size (default 32)
	NumChannels       int     // num_channels (default 3; the only one supported)
	HiddenAct         string  // hidden_act (default quick_gelu; also gelu, gelu_pytorch_tanh, gelu_new)
	LayerNormEps      float64 // layer_norm_eps (default 1e-5)

	extra map[string]json.RawMessage
}

// Config is a Hugging Face CLIPModel config.json. Keys absent from the file
// take Hugging Face's defaults; keys this package does not interpret are kept
// and written back by Save.
type Config struct {
	// ModelType is config.json's model_type: ModelCLIP (the default when
	// absent) or ModelSigLIP.
	ModelType           string
	Text                TextConfig
	Vision              VisionConfig
	ProjectionDim       int     // projection_dim (default 512): embedding size D
	LogitScaleInitValue float64 // logit_scale_init_value (default 2.6592 = ln(1/0.07))
	extra               map[string]json.RawMessage
}

// Model types (config.json's model_type).
const (
	ModelCLIP   = "clip"
	ModelSigLIP = "siglip"
)

// IsSigLIP reports a SigLIP (SiglipModel) configuration.
func (c Config) IsSigLIP() bool { return c.ModelType == ModelSigLIP }

// VisionSeqLen is the vision tower's sequence length: CLIP's class token
// and patches, or SigLIP's patches alone.
func (c Config) VisionSeqLen() int {
	if c.IsSigLIP() {
		return c.Vision.NumPatches()
	}
	return c.Vision.SeqLen()
}

// NumPatches is (ImageSize/PatchSize)², the number of patch tokens.
func (v VisionConfig) NumPatches() int { g := v.ImageSize / v.PatchSize; return g * g }

// SeqLen is CLIP's vision sequence length: the class token plus the
// patches (Config.VisionSeqLen covers SigLIP too).
func (v VisionConfig) SeqLen() int { return v.NumPatches() + 1 }

// DefaultConfig returns Hugging Face's CLIPConfig defaults (ViT-B/32 sized).
func DefaultConfig() Config {
	return Config{
		ModelType: ModelCLIP,
		Text: TextConfig{
			HiddenSize: 512, IntermediateSize: 2048, NumAttentionHeads: 8, NumHiddenLayers: 12,
			MaxPositionEmbeddings: 77, VocabSize: 49408, HiddenAct: "quick_gelu", LayerNormEps: 1e-5,
		},
		Vision: VisionConfig{
			HiddenSize: 768, IntermediateSize: 3072, NumAttentionHeads: 12, NumHiddenLayers: 12,
			ImageSize: 224, PatchSize: 32, NumChannels: 3, HiddenAct: "quick_gelu", LayerNormEps: 1e-5,
		},
		ProjectionDim:       512,
		LogitScaleInitValue: 2.6592,
	}
}

// ViTB32Config is openai/clip-vit-base-patch32's architecture.
func ViTB32Config() Config { return DefaultConfig() }

// ViTB16Config is openai/clip-vit-base-patch16's architecture.
func ViTB16Config() Config {
	c := DefaultConfig()
	c.Vision.PatchSize = 16
	return c
}

// ViTL14Config is openai/clip-vit-large-patch14's architecture (imageSize 224;
// 336 gives clip-vit-large-patch14-336).
func ViTL14Config(imageSize int) Config {
	c := DefaultConfig()
	c.Text.HiddenSize, c.Text.IntermediateSize, c.Text.NumAttentionHeads = 768, 3072, 12
	c.Vision.HiddenSize, c.Vision.IntermediateSize, c.Vision.NumAttentionHeads, c.Vision.NumHiddenLayers = 1024, 4096, 16, 24
	c.Vision.PatchSize, c.Vision.ImageSize = 14, imageSize
	c.ProjectionDim = 768
	return c
}

// TinyConfig is a small CLIP for tests: the architecture of
// ../shared/golden/tiny-clip (2 vision layers of width 128 with 2 heads,
// patch 8, image 32; 2 text layers of width 64 with 4 heads; vocab 512;
// projection 32).
func TinyConfig() Config {
	c := DefaultConfig()
	c.Text = TextConfig{HiddenSize: 64, IntermediateSize: 256, NumAttentionHeads: 4, NumHiddenLayers: 2,
		MaxPositionEmbeddings: 77, VocabSize: 512, HiddenAct: "quick_gelu", LayerNormEps: 1e-5}
	c.Vision = VisionConfig{HiddenSize: 128, IntermediateSize: 512, NumAttentionHeads: 2, NumHiddenLayers: 2,
		ImageSize: 32, PatchSize: 8, NumChannels: 3, HiddenAct: "quick_gelu", LayerNormEps: 1e-5}
	c.ProjectionDim = 32
	return c
}

// Validate reports the first inconsistency that would make the model unbuildable.
func (c Config) Validate() error {
	pos := func(name string, v int) error {
		if v <= 0 {
			return fmt.Errorf("config: %s = %d, must be positive", name, v)
		}
		return nil
	}
	for _, chk := range []struct {
		n string
		v int
	}{
		{"text_config.hidden_size", c.Text.HiddenSize},
		{"text_config.intermediate_size", c.Text.IntermediateSize},
		{"text_config.num_attention_heads", c.Text.NumAttentionHeads},
		{"text_config.num_hidden_layers", c.Text.NumHiddenLayers},
		{"text_config.max_position_embeddings", c.Text.MaxPositionEmbeddings},
		{"text_config.vocab_size", c.Text.VocabSize},
		{"vision_config.hidden_size", c.Vision.HiddenSize},
		{"vision_config.intermediate_size", c.Vision.IntermediateSize},
		{"vision_config.num_attention_heads", c.Vision.NumAttentionHeads},
		{"vision_config.num_hidden_layers", c.Vision.NumHiddenLayers},
		{"vision_config.image_size", c.Vision.ImageSize},
		{"vision_config.patch_size", c.Vision.PatchSize},
		{"projection_dim", c.ProjectionDim},
	} {
		if err := pos(chk.n, chk.v); err != nil {
			return err
		}
	}
	if c.Text.HiddenSize%c.Text.NumAttentionHeads != 0 {
		return fmt.Errorf("config: text_config.hidden_size %d is not divisible by num_attention_heads %d",
			c.Text.HiddenSize, c.Text.NumAttentionHeads)
	}
	if c.Vision.HiddenSize%c.Vision.NumAttentionHeads != 0 {
		return fmt.Errorf("config: vision_config.hidden_size %d is not divisible by num_attention_heads %d",
			c.Vision.HiddenSize, c.Vision.NumAttentionHeads)
	}
	if c.Vision.ImageSize%c.Vision.PatchSize != 0 {
		return fmt.Errorf("config: vision_config.image_size %d is not a multiple of patch_size %d",
			c.Vision.ImageSize, c.Vision.PatchSize)
	}
	if c.Vision.NumChannels != 3 {
		return fmt.Errorf("config: vision_config.num_channels = %d, only 3 (RGB) is supported", c.Vision.NumChannels)
	}
	for _, a := range []struct{ tower, act string }{{"text_config", c.Text.HiddenAct}, {"vision_config", c.Vision.HiddenAct}} {
		if _, err := backend.ParseActivation(a.act); err != nil {
			return fmt.Errorf("config: %s.hidden_act: %w", a.tower, err)
		}
	}
	if err := c.validateSigLIP(); err != nil {
		return err
	}
	if c.Text.LayerNormEps <= 0 || c.Vision.LayerNormEps <= 0 {
		return fmt.Errorf("config: layer_norm_eps must be positive")
	}
	if math.IsNaN(c.LogitScaleInitValue) || math.IsInf(c.LogitScaleInitValue, 0) {
		return fmt.Errorf("config: logit_scale_init_value %v is not finite", c.LogitScaleInitValue)
	}
	return nil
}

// LoadConfig reads and validates a Hugging Face CLIP config.json.
func LoadConfig(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("model config: %w", err)
	}
	c, err := ParseConfig(raw)
	if err != nil {
		return Config{}, fmt.Errorf("model config %s: %w", path, err)
	}
	return c, nil
}

// ParseConfig decodes and validates config.json contents.
func ParseConfig(raw []byte) (Config, error) {
	c := DefaultConfig()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return c, fmt.Errorf("not a JSON object: %w", err)
	}
	var modelType string
	if msg, ok := top["model_type"]; ok {
		if err := json.Unmarshal(msg, &modelType); err != nil {
			return c, fmt.Errorf("key model_type: %w", err)
		}
	}
	switch modelType {
	case "", ModelCLIP:
	case ModelSigLIP:
		c = SigLIPBaseConfig()
	default:
		return c, fmt.Errorf("model_type %q is not supported (clipline reads %q, CLIPModel, and %q, SiglipModel)", modelType, ModelCLIP, ModelSigLIP)
	}
	delete(top, "model_type")
	var err error
	take := func(m map[string]json.RawMessage, key string, dst any) {
		msg, ok := m[key]
		if !ok || err != nil {
			return
		}
		delete(m, key)
		if string(bytes.TrimSpace(msg)) == "null" {
			return
		}
		if e := json.Unmarshal(msg, dst); e != nil {
			err = fmt.Errorf("key %s: %w", key, e)
		}
	}
	if !c.IsSigLIP() {
		// SiglipConfig has neither: its embedding width is the text
		// head's projection_size, and logit_scale starts from the checkpoint.
		take(top, "projection_dim", &c.ProjectionDim)
		take(top, "logit_scale_init_value", &c.LogitScaleInitValue)
	}
	var tc, vc, tcd, vcd map[string]json.RawMessage
	take(top, "text_config", &tc)
	take(top, "vision_config", &vc)
	// Older transformers configs carry *_config_dict, which override
	// *_config when present (CLIPConfig.__init__ does the same).
	take(top, "text_config_dict", &tcd)
	take(top, "vision_config_dict", &vcd)
	if err != nil {
		return c, err
	}
	merge := func(dst, src map[string]json.RawMessage) map[string]json.RawMessage {
		if src == nil {
			return dst
		}
		if dst == nil {
			dst = map[string]json.RawMessage{}
		}
		for k, v := range src {
			dst[k] = v
		}
		return dst
	}
	tc, vc = merge(tc, tcd), merge(vc, vcd)
	if tc != nil {
		take(tc, "hidden_size", &c.Text.HiddenSize)
		take(tc, "intermediate_size", &c.Text.IntermediateSize)
		take(tc, "num_attention_heads", &c.Text.NumAttentionHeads)
		take(tc, "num_hidden_layers", &c.Text.NumHiddenLayers)
		take(tc, "max_position_embeddings", &c.Text.MaxPositionEmbeddings)
		take(tc, "vocab_size", &c.Text.VocabSize)
		take(tc, "hidden_act", &c.Text.HiddenAct)
		take(tc, "layer_norm_eps", &c.Text.LayerNormEps)
		if c.IsSigLIP() {
			c.Text.ProjectionSize = 0
			take(tc, "projection_size", &c.Text.ProjectionSize)
		}
		if err != nil {
			return c, fmt.Errorf("text_config: %w", err)
		}
		c.Text.extra = tc
	}
	if vc != nil {
		take(vc, "hidden_size", &c.Vision.HiddenSize)
		take(vc, "intermediate_size", &c.Vision.IntermediateSize)
		take(vc, "num_attention_heads", &c.Vision.NumAttentionHeads)
		take(vc, "num_hidden_layers", &c.Vision.NumHiddenLayers)
		take(vc, "image_size", &c.Vision.ImageSize)
		take(vc, "patch_size", &c.Vision.PatchSize)
		take(vc, "num_channels", &c.Vision.NumChannels)
		take(vc, "hidden_act", &c.Vision.HiddenAct)
		take(vc, "layer_norm_eps", &c.Vision.LayerNormEps)
		if c.IsSigLIP() {
			useHead := true
			if _, ok := vc["vision_use_head"]; ok {
				take(vc, "vision_use_head", &useHead)
				vc["vision_use_head"] = json.RawMessage("true")
			}
			if err == nil && !useHead {
				err = fmt.Errorf("vision_use_head = false is not supported (the image embedding is the attention-pooling head's output)")
			}
		}
		if err != nil {
			return c, fmt.Errorf("vision_config: %w", err)
		}
		c.Vision.extra = vc
	}
	c.extra = top
	if c.IsSigLIP() {
		if c.Text.ProjectionSize == 0 {
			c.Text.ProjectionSize = c.Text.HiddenSize // SiglipTextConfig's default
		}
		c.ProjectionDim = c.Text.ProjectionSize
	}
	return c, c.Validate()
}

// MarshalJSON writes the config in Hugging Face's CLIPModel layout, with the
// keys that were read but not interpreted written back unchanged.
func (c Config) MarshalJSON() ([]byte, error) {
	if c.IsSigLIP() {
		return c.marshalSigLIP()
	}
	text, vision := c.towersJSON()
	text["projection_dim"], text["model_type"] = c.ProjectionDim, "clip_text_model"
	vision["projection_dim"], vision["model_type"] = c.ProjectionDim, "clip_vision_model"
	put(text, c.Text.extra)
	put(vision, c.Vision.extra)
	top := map[string]any{
		"architectures":          []string{"CLIPModel"},
		"model_type":             ModelCLIP,
		"projection_dim":         c.ProjectionDim,
		"logit_scale_init_value": c.LogitScaleInitValue,
		"text_config":            text,
		"vision_config":          vision,
	}
	put(top, c.extra)
	return json.MarshalIndent(top, "", "  ")
}

// towersJSON returns the text_config and vision_config keys common to
// CLIP and SigLIP.
func (c Config) towersJSON() (text, vision map[string]any) {
	text = map[string]any{
		"hidden_size": c.Text.HiddenSize, "intermediate_size": c.Text.IntermediateSize,
		"num_attention_heads": c.Text.NumAttentionHeads, "num_hidden_layers": c.Text.NumHiddenLayers,
		"max_position_embeddings": c.Text.MaxPositionEmbeddings, "vocab_size": c.Text.VocabSize,
		"hidden_act": c.Text.HiddenAct, "layer_norm_eps": c.Text.LayerNormEps,
	}
	vision = map[string]any{
		"hidden_size": c.Vision.HiddenSize, "intermediate_size": c.Vision.IntermediateSize,
		"num_attention_heads": c.Vision.NumAttentionHeads, "num_hidden_layers": c.Vision.NumHiddenLayers,
		"image_size": c.Vision.ImageSize, "patch_size": c.Vision.PatchSize, "num_channels": c.Vision.NumChannels,
		"hidden_act": c.Vision.HiddenAct, "layer_norm_eps": c.Vision.LayerNormEps,
	}
	return text, vision
}

// put adds the keys of extra that m does not set.
func put(m map[string]any, extra map[string]json.RawMessage) {
	for k, v := range extra {
		if _, ok := m[k]; !ok {
			m[k] = v
		}
	}
}

// SaveConfig writes c to path as config.json contents, atomically.
func SaveConfig(path string, c Config) error {
	raw, err := c.MarshalJSON()
	if err != nil {
		return fmt.Errorf("model config %s: %w", path, err)
	}
	return writeFileAtomic(path, append(raw, '\n'))
}

// writeFileAtomic writes data to path through a temporary file and a
// rename, so readers never see a half-written file.
func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
