package train

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFinalLineNamesTheModel: the last line names best/ when validation
// ran, and otherwise says why there is no best/ and names final/.
func TestFinalLineNamesTheModel(t *testing.T) {
	dir := tinyModelDir(t)
	for _, tc := range []struct {
		name, eval string
		val        *Data
		want       string
	}{
		{"no-val-data", "epoch", nil, "no validation ran (no validation pairs), so there is no best/: the model is final/ ("},
		{"eval-no", "no", synthData(2, 4, 2), "no validation ran (eval_strategy is no), so there is no best/: the model is final/ ("},
		{"validated", "epoch", synthData(2, 4, 2), ", best (t2i R@1 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			c := testConfig(dir, out)
			c.Epochs, c.EvalStrategy = 1, tc.eval
			var log bytes.Buffer
			if _, err := newTrainer(t, c, dir, synthData(1, 8, 2), tc.val, "", &log).Run(); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(log.String()), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "train: done, ") || !strings.Contains(last, tc.want) || !strings.Contains(last, filepath.Join(out, "final")) {
				t.Fatalf("last line %q, want %q and final/'s path", last, tc.want)
			}
			_, err := os.Stat(filepath.Join(out, "best"))
			if hasBest := err == nil; hasBest != (tc.val != nil && tc.eval != "no") {
				t.Fatalf("best/ exists: %v", hasBest)
			}
		})
	}
}
