//go:build cuda || cudaemu

package device

import (
	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/backend/cuda"
)

const cudaBuilt = true

func openCUDA(s Spec) (backend.Backend, error) {
	be, err := cuda.New(s.Ordinal, cuda.Options{BF16: s.BF16})
	if err != nil {
		return nil, err
	}
	return be, nil
}
