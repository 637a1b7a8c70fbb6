package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTableAndRawPassThrough(t *testing.T) {
	dir := t.TempDir()
	before := `{"t2i":{"r1":0.25,"r5":0.5,"r10":0.75,"mrr":0.4,"ndcg10":0.45},"i2t":{"r1":0.2,"r5":0.4,"r10":0.6,"mrr":0.3,"ndcg10":0.35},"rsum":2.7,"images":100,"queries":500,"extra":1}`
	after := strings.Replace(before, `"r1":0.25`, `"r1":0.5`, 1)
	pb, pa := filepath.Join(dir, "b.json"), filepath.Join(dir, "a.json")
	os.WriteFile(pb, []byte(before), 0o644)
	os.WriteFile(pa, []byte(after), 0o644)
	mb, rb, err := LoadMetrics(pb)
	if err != nil {
		t.Fatal(err)
	}
	ma, _, err := LoadMetrics(pa)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	Table(&buf, mb, ma)
	if !strings.Contains(buf.String(), "t2i R@1         25.0%       50.0%    +25.0 pp") {
		t.Fatalf("table:\n%s", buf.String())
	}
	var back map[string]any
	if err := json.Unmarshal(rb, &back); err != nil || back["extra"] != 1.0 {
		t.Fatalf("raw metrics lost fields: %v %v", back, err)
	}
}

func TestRejectsEmptyEvaluation(t *testing.T) {
	p := filepath.Join(t.TempDir(), "e.json")
	os.WriteFile(p, []byte(`{"t2i":{},"i2t":{},"images":0,"queries":0}`), 0o644)
	if _, _, err := LoadMetrics(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("want an error naming %s, got %v", p, err)
	}
}
