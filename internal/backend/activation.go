package backend

import (
	"fmt"
	"strings"
)

// Activation is the MLP's elementwise nonlinearity, as Hugging Face
// configs name it in hidden_act.
type Activation int

const (
	// QuickGELU is "quick_gelu", OpenAI CLIP's x·σ(1.702x).
	QuickGELU Activation = iota
	// GELU is "gelu": x·Φ(x) with the exact normal CDF (erf), as
	// PyTorch's F.gelu (LAION/open_clip checkpoints).
	GELU
	// GELUTanh is "gelu_pytorch_tanh" (and "gelu_new", the same formula):
	// 0.5x·(1 + tanh(√(2/π)(x + 0.044715x³))), as F.gelu(approximate="tanh")
	// (SigLIP).
	GELUTanh
)

// activationNames are the hidden_act values each Activation is read from;
// the first is its name.
var activationNames = [...][]string{
	QuickGELU: {"quick_gelu"},
	GELU:      {"gelu"},
	GELUTanh:  {"gelu_pytorch_tanh", "gelu_new"},
}

// ParseActivation maps a config's hidden_act to its Activation.
func ParseActivation(hiddenAct string) (Activation, error) {
	var all []string
	for a, names := range activationNames {
		for _, n := range names {
			if n == hiddenAct {
				return Activation(a), nil
			}
			all = append(all, fmt.Sprintf("%q", n))
		}
	}
	return 0, fmt.Errorf("activation %q is not supported (supported: %s)", hiddenAct, strings.Join(all, ", "))
}

// String is the activation's hidden_act name.
func (a Activation) String() string {
	if a >= 0 && int(a) < len(activationNames) {
		return activationNames[a][0]
	}
	return fmt.Sprintf("Activation(%d)", int(a))
}
