package modelid

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeModel(t *testing.T, dir, config, weights string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"config.json": config, "model.safetensors": weights} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func hash(t *testing.T, dir string) string {
	t.Helper()
	h, err := Hash(dir)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestHash: the documented framing, checked against Python's hashlib:
//
//	h = hashlib.sha256()
//	for n, b in [("config.json", b'{"a": 1}\n'), ("model.safetensors", b"weights")]:
//	    h.update(n.encode() + b"\0" + struct.pack(">Q", len(b)) + b)
func TestHash(t *testing.T) {
	dir := t.TempDir()
	writeModel(t, filepath.Join(dir, "m"), "{\"a\": 1}\n", "weights")
	const want = "sha256:55e5070add468cd176a81127b568c709f4bee668c71f7492939a66c1c354a630"
	if got := hash(t, filepath.Join(dir, "m")); got != want {
		t.Errorf("Hash = %s, want %s", got, want)
	}

	// The same files elsewhere, with a different tokenizer: the same model.
	writeModel(t, filepath.Join(dir, "copy"), "{\"a\": 1}\n", "weights")
	os.WriteFile(filepath.Join(dir, "copy", "vocab.json"), []byte("{}"), 0o644)
	if got := hash(t, filepath.Join(dir, "copy")); got != want {
		t.Errorf("a copy with a vocab.json hashes to %s, want %s", got, want)
	}

	// Other weights, another config, or bytes moved from one file to the
	// other: other models.
	seen := map[string]string{want: "the original"}
	for name, files := range map[string][2]string{
		"weights": {"{\"a\": 1}\n", "weightz"},
		"config":  {"{\"a\": 2}\n", "weights"},
		"moved":   {"{\"a\": 1}\nw", "eights"},
	} {
		d := filepath.Join(dir, name)
		writeModel(t, d, files[0], files[1])
		h := hash(t, d)
		if other, ok := seen[h]; ok {
			t.Errorf("%s hashes like %s: %s", name, other, h)
		}
		seen[h] = name
	}
}

func TestHashMissing(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}"), 0o644)
	_, err := Hash(dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "model.safetensors")) {
		t.Errorf("Hash without weights: %v, want an error naming model.safetensors", err)
	}
}
