// Package device opens the compute backend that a stage's --device flag
// names:
//
//	cpu                the pure-Go backend (internal/backend/cpu), always built in
//	cpu,bf16           the same with bf16 matrix-product inputs and fp32 accumulation,
//	                   for inference (embed, serve, clip.Load): VDPBF16PS on CPUs with
//	                   avx512_bf16, fp32 FMAs on the same bf16 operands elsewhere
//	cpu,fp32           explicit fp32 (what cpu means)
//	cuda, cuda:N       GPU N (default 0) with the CUDA backend, fp32 throughout
//	cuda,bf16          bf16 matrix-product inputs, fp32 accumulation and master weights
//	cuda,bf16auto      the same rounding done by cuBLAS inside the product (no
//	                   conversion pass, no bf16 weight copies)
//	cuda,tf32          TF32 tensor-core products (10-bit mantissa inputs)
//	cuda:N,fp32        explicit fp32 (the default)
//
// The CUDA backend exists only in binaries built with the build tag cuda
// (`make -f pipeline.mk cuda`, docs/cuda.md); other builds answer a cuda
// device with an error saying so. Nothing in the untagged build imports
// gorgonia.org/cu, whose package init calls cuInit.
package device

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/backend/cpu"
)

// Spec is a parsed device name.
type Spec struct {
	Kind    string // "cpu" or "cuda"
	Ordinal int    // GPU ordinal (cuda only)
	// Precision of matrix products: "fp32" (or ""), "bf16", and for cuda
	// also "bf16auto" or "tf32".
	Precision string
}

// String renders the spec in Parse's syntax.
func (s Spec) String() string {
	if s.Kind != "cuda" {
		if s.Precision == "bf16" {
			return s.Kind + ",bf16"
		}
		return s.Kind
	}
	out := "cuda:" + strconv.Itoa(s.Ordinal)
	if s.Precision != "" && s.Precision != "fp32" {
		out += "," + s.Precision
	}
	return out
}

// Syntax describes the accepted device names, for flag help and errors.
const Syntax = "cpu, cuda, cuda:N, optionally followed by ,bf16 or ,fp32, and cuda by ,bf16auto or ,tf32 (e.g. cuda:0,bf16; cpu,bf16 is for inference)"

// Parse reads a device name (see the package doc). The empty string means cpu.
func Parse(name string) (Spec, error) {
	s := strings.ToLower(strings.TrimSpace(name))
	if s == "" {
		return Spec{Kind: "cpu"}, nil
	}
	parts := strings.Split(s, ",")
	var spec Spec
	dev := parts[0]
	switch {
	case dev == "cpu":
		spec.Kind = "cpu"
	case dev == "cuda" || dev == "gpu":
		spec.Kind = "cuda"
	case strings.HasPrefix(dev, "cuda:"):
		n, err := strconv.Atoi(dev[len("cuda:"):])
		if err != nil || n < 0 {
			return Spec{}, fmt.Errorf("device %q: bad GPU ordinal %q (want %s)", name, dev[len("cuda:"):], Syntax)
		}
		spec.Kind, spec.Ordinal = "cuda", n
	default:
		return Spec{}, fmt.Errorf("unknown device %q (want %s)", name, Syntax)
	}
	for _, opt := range parts[1:] {
		switch opt {
		case "bf16", "bf16auto", "tf32":
			spec.Precision = opt
		case "fp32":
			spec.Precision = ""
		default:
			return Spec{}, fmt.Errorf("device %q: unknown option %q (want bf16, bf16auto, tf32 or fp32)", name, opt)
		}
		if spec.Kind == "cpu" && spec.Precision != "" && spec.Precision != "bf16" {
			return Spec{}, fmt.Errorf("device %q: the cpu backend has fp32 and bf16 only", name)
		}
	}
	return spec, nil
}

// ErrNoCUDA is returned (wrapped) for a cuda device in a binary built
// without the cuda tag.
var ErrNoCUDA = errors.New("this binary was built without CUDA support; build with `make -f pipeline.mk cuda` (see docs/cuda.md)")

// Open returns the backend for a device name.
func Open(name string) (backend.Backend, error) {
	spec, err := Parse(name)
	if err != nil {
		return nil, err
	}
	return OpenSpec(spec)
}

// OpenSpec returns the backend for a parsed spec.
func OpenSpec(spec Spec) (backend.Backend, error) {
	switch spec.Kind {
	case "cpu":
		if spec.Precision == "bf16" {
			return cpu.NewBF16(runtime.GOMAXPROCS(0)), nil
		}
		return cpu.New(), nil
	case "cuda":
		be, err := openCUDA(spec)
		if err != nil {
			return nil, fmt.Errorf("device %s: %w", spec, err)
		}
		return be, nil
	}
	return nil, fmt.Errorf("unknown device kind %q", spec.Kind)
}

// Trainable says whether spec computes gradients faithfully enough to
// train with: cpu,bf16 is for inference only (its weights are packed once;
// CPU training is fp32). The error names the device and what to use.
func (s Spec) Trainable() error {
	if s.Kind == "cpu" && s.Precision == "bf16" {
		return fmt.Errorf("device %s is for inference (embed, serve); training on the CPU is fp32: use cpu", s)
	}
	return nil
}

// CUDABuilt reports whether this binary contains the CUDA backend.
func CUDABuilt() bool { return cudaBuilt }

// Close releases a backend's device resources when it has any (the CUDA
// backend); a no-op for the CPU backend.
func Close(be backend.Backend) error {
	if c, ok := be.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}
