package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	before := write("zs.json", `{"t2i":{"r1":0.25},"i2t":{"r1":0.5},"images":4,"queries":8,"extra":1}`)
	after := write("ft.json", `{"t2i":{"r1":0.5},"i2t":{"r1":0.75},"images":4,"queries":8}`)
	started := write("started", "1000.5\n")

	var stdout, stderr bytes.Buffer
	if err := run([]string{"--zero-shot", before, "--fine-tuned", after, "--started", started}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		ZeroShot  map[string]any `json:"zero_shot"`
		FineTuned map[string]any `json:"fine_tuned"`
		Seconds   float64        `json:"seconds"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("stdout: %v\n%s", err, stdout.String())
	}
	if rep.ZeroShot["extra"] != 1.0 || rep.FineTuned["images"] != 4.0 || !(rep.Seconds >= 1e9) {
		t.Errorf("report %+v", rep)
	}
	if !strings.Contains(stderr.String(), "t2i R@1         25.0%       50.0%    +25.0 pp") {
		t.Errorf("table:\n%s", stderr.String())
	}

	// --out: the same JSON in a file, nothing on stdout, no temporary left.
	out := filepath.Join(dir, "out", "report.json")
	os.Mkdir(filepath.Dir(out), 0o755)
	var stdout2 bytes.Buffer
	if err := run([]string{"--zero-shot", before, "--fine-tuned", after, "--out", out}, &stdout2, &stderr); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil || stdout2.Len() != 0 || !bytes.Contains(got, []byte(`"seconds": 0`)) {
		t.Errorf("--out: %v, stdout %q, file %s", err, stdout2.String(), got)
	}
	if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 1 {
		t.Errorf("--out left %v", ents)
	}

	// Errors and --help.
	for _, args := range [][]string{
		{"--zero-shot", before},
		{"--zero-shot", before, "--fine-tuned", write("empty.json", `{}`)},
		{"--zero-shot", before, "--fine-tuned", after, "--started", write("bad", "soon")},
		{"--zero-shot", before, "--fine-tuned", after, "--html", filepath.Join(dir, "r.html")}, // without results
	} {
		if err := run(args, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	var help bytes.Buffer
	if err := run([]string{"--help"}, &help, &bytes.Buffer{}); err != nil || !strings.Contains(help.String(), "--fine-tuned") {
		t.Errorf("--help: %v\n%s", err, help.String())
	}
}
