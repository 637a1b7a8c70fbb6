//go:build !cuda && !cudaemu

package device

import "github.com/clipline/clipline/internal/backend"

const cudaBuilt = false

func openCUDA(Spec) (backend.Backend, error) { return nil, ErrNoCUDA }
