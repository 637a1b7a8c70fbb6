package device

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Spec
	}{
		{"", Spec{Kind: "cpu"}},
		{"cpu", Spec{Kind: "cpu"}},
		{" CPU ", Spec{Kind: "cpu"}},
		{"cuda", Spec{Kind: "cuda"}},
		{"gpu", Spec{Kind: "cuda"}},
		{"cuda:0", Spec{Kind: "cuda"}},
		{"cuda:3", Spec{Kind: "cuda", Ordinal: 3}},
		{"cuda,bf16", Spec{Kind: "cuda", Precision: "bf16"}},
		{"cuda,tf32", Spec{Kind: "cuda", Precision: "tf32"}},
		{"cuda:2,bf16auto", Spec{Kind: "cuda", Ordinal: 2, Precision: "bf16auto"}},
		{"cuda:1,bf16", Spec{Kind: "cuda", Ordinal: 1, Precision: "bf16"}},
		{"cuda:1,bf16,fp32", Spec{Kind: "cuda", Ordinal: 1}},
		{"cpu,bf16", Spec{Kind: "cpu", Precision: "bf16"}},
		{"CPU,BF16", Spec{Kind: "cpu", Precision: "bf16"}},
		{"cpu,fp32", Spec{Kind: "cpu"}},
		{"cpu,bf16,fp32", Spec{Kind: "cpu"}},
	} {
		got, err := Parse(c.in)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"tpu", "cuda:", "cuda:-1", "cuda:x", "cuda,fp16", "cpu,tf32", "cpu,bf16auto", "cuda:0:1"} {
		if s, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", bad, s)
		} else if !strings.Contains(err.Error(), bad) && !strings.Contains(err.Error(), "cpu backend") {
			t.Errorf("Parse(%q): error %q does not name the input", bad, err)
		}
	}
}

func TestSpecStringRoundTrips(t *testing.T) {
	for _, s := range []Spec{{Kind: "cpu"}, {Kind: "cuda"}, {Kind: "cuda", Ordinal: 2, Precision: "bf16"}, {Kind: "cuda", Precision: "tf32"}, {Kind: "cpu", Precision: "bf16"}} {
		got, err := Parse(s.String())
		if err != nil || got != s {
			t.Errorf("%+v -> %q -> %+v, %v", s, s.String(), got, err)
		}
	}
}

func TestOpenCPU(t *testing.T) {
	be, err := Open("cpu")
	if err != nil {
		t.Fatal(err)
	}
	if be.Name() != "cpu" {
		t.Fatalf("Open(cpu) gave %s", be.Name())
	}
	x := be.Alloc(3)
	be.Upload(x, []float32{1, 2, 3})
	if got := be.SumSquares(x, 3); got != 14 {
		t.Fatalf("SumSquares = %v", got)
	}
	if err := Close(be); err != nil {
		t.Fatal(err)
	}
}

// Without the cuda tag a cuda device is a clear error, never a crash.
func TestOpenCUDAWithoutTag(t *testing.T) {
	if CUDABuilt() {
		t.Skip("built with the cuda tag")
	}
	_, err := Open("cuda:0,bf16")
	if !errors.Is(err, ErrNoCUDA) || !strings.Contains(err.Error(), "make -f pipeline.mk cuda") {
		t.Fatalf("want ErrNoCUDA naming the build command, got %v", err)
	}
}

func TestOpenCPUBF16(t *testing.T) {
	be, err := Open("cpu,bf16")
	if err != nil {
		t.Fatal(err)
	}
	if be.Name() != "cpu,bf16" {
		t.Fatalf("Open(cpu,bf16) gave %s", be.Name())
	}
	spec, _ := Parse("cpu,bf16")
	if err := spec.Trainable(); err == nil || !strings.Contains(err.Error(), "cpu,bf16") {
		t.Fatalf("cpu,bf16 trainable: %v", err)
	}
	for _, ok := range []string{"cpu", "cuda,bf16", "cuda:1,tf32"} {
		if s, _ := Parse(ok); s.Trainable() != nil {
			t.Errorf("%s: %v", ok, s.Trainable())
		}
	}
}
