//go:build cuda || cudaemu

package device

import (
	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/backend/cuda"
)

const cudaBuilt = true

func openCUDA(s Spec) (backend.Backend, error) {
	o := cuda.Options{}
	switch s.Precision {
	case "bf16":
		o.BF16 = true
	case "bf16auto":
		o.BF16Auto = true
	case "tf32":
		o.TF32 = true
	}
	be, err := cuda.New(s.Ordinal, o)
	if err != nil {
		return nil, err
	}
	return be, nil
}
