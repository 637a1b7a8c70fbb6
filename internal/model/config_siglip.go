package model

import (
	"encoding/json"
	"fmt"

	"github.com/clipline/clipline/internal/loss"
)

// SigLIPBaseConfig returns Hugging Face's SiglipConfig defaults, the
// architecture of google/siglip-base-patch16-224: both towers 12 layers of
// width 768 with 12 heads, gelu_pytorch_tanh, layer_norm_eps 1e-6; text
// vocab 32000 and 64 positions, the head keeping the width (projection
// 768); vision patch 16 at 224 (196 tokens, no class token).
func SigLIPBaseConfig() Config {
	return Config{
		ModelType: ModelSigLIP,
		Text: TextConfig{
			HiddenSize: 768, IntermediateSize: 3072, NumAttentionHeads: 12, NumHiddenLayers: 12,
			MaxPositionEmbeddings: 64, VocabSize: 32000, HiddenAct: "gelu_pytorch_tanh", LayerNormEps: 1e-6,
			ProjectionSize: 768,
		},
		Vision: VisionConfig{
			HiddenSize: 768, IntermediateSize: 3072, NumAttentionHeads: 12, NumHiddenLayers: 12,
			ImageSize: 224, PatchSize: 16, NumChannels: 3, HiddenAct: "gelu_pytorch_tanh", LayerNormEps: 1e-6,
		},
		ProjectionDim: 768,
		// Not a SiglipConfig key: New starts logit_scale here, as the
		// SigLIP paper does (t' = log 10, with logit_bias -10).
		LogitScaleInitValue: float64(loss.SigmoidInitLogitScale),
	}
}

// validateSigLIP checks what only SigLIP needs: the text head's width must
// be the image embedding's (the vision tower's width, as it has no
// projection).
func (c Config) validateSigLIP() error {
	if !c.IsSigLIP() {
		if c.ModelType != ModelCLIP && c.ModelType != "" {
			return fmt.Errorf("config: model_type %q is not supported (%q or %q)", c.ModelType, ModelCLIP, ModelSigLIP)
		}
		return nil
	}
	if c.Text.ProjectionSize != c.Vision.HiddenSize {
		return fmt.Errorf("config: text_config.projection_size %d differs from vision_config.hidden_size %d (SigLIP compares the text head's output with the vision tower's pooled output)",
			c.Text.ProjectionSize, c.Vision.HiddenSize)
	}
	if c.ProjectionDim != c.Text.ProjectionSize {
		return fmt.Errorf("config: the embedding width %d differs from text_config.projection_size %d", c.ProjectionDim, c.Text.ProjectionSize)
	}
	return nil
}

// marshalSigLIP writes the config in Hugging Face's SiglipModel layout,
// with the keys that were read but not interpreted written back unchanged.
func (c Config) marshalSigLIP() ([]byte, error) {
	text, vision := c.towersJSON()
	text["projection_size"], text["model_type"] = c.Text.ProjectionSize, "siglip_text_model"
	vision["model_type"] = "siglip_vision_model"
	put(text, c.Text.extra)
	put(vision, c.Vision.extra)
	top := map[string]any{
		"architectures": []string{"SiglipModel"},
		"model_type":    ModelSigLIP,
		"text_config":   text,
		"vision_config": vision,
	}
	put(top, c.extra)
	return json.MarshalIndent(top, "", "  ")
}
