package safetensors

import (
	"path/filepath"
	"testing"

	"github.com/clipline/clipline/internal/sharedtest"
)

func TestRoundTrip(t *testing.T) {
	want := []float32{1, -2.5, 3e-8, 65504}
	path := filepath.Join(t.TempDir(), "x.safetensors")
	if err := Save(path, map[string]Tensor{"a.b": F32([]int{2, 2}, want)}, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.Tensors["a.b"].Float32()
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("value %d: got %v want %v", i, got[i], want[i])
		}
	}
	if f.Metadata["k"] != "v" || len(f.Tensors["a.b"].Shape) != 2 {
		t.Fatalf("metadata or shape lost: %v %v", f.Metadata, f.Tensors["a.b"].Shape)
	}
}

func TestHalf(t *testing.T) {
	cases := map[uint16]float32{0x3c00: 1, 0xc000: -2, 0x7bff: 65504, 0x0001: 5.960464477539063e-08, 0x3555: 0.33325195}
	for h, want := range cases {
		if got := HalfToFloat32(h); got != want {
			t.Errorf("half %#04x: got %v want %v", h, got, want)
		}
	}
}

func TestParseRejectsBadOffsets(t *testing.T) {
	b, _ := Encode(map[string]Tensor{"x": F32([]int{3}, []float32{1, 2, 3})}, nil)
	if _, err := Parse(b[:len(b)-4]); err == nil {
		t.Fatal("truncated data accepted")
	}
}

func TestReadsReference(t *testing.T) {
	dir := sharedtest.Dir(t, "golden", "tiny-clip")
	f, err := Load(filepath.Join(dir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := f.Tensors["input_ids"].Int64()
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 4*77 || ids[0] == 0 {
		t.Fatalf("input_ids: %d values, first %d", len(ids), ids[0])
	}
}
