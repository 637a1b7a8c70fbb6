package shard

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// env is a fake environment for Parse.
func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParse(t *testing.T) {
	none := env()
	for _, tc := range []struct {
		value string
		count int
		env   func(string) (string, bool)
		want  Spec
	}{
		{"", 0, none, Spec{}},
		{"0/1", 0, none, Spec{0, 1}},
		{"2/7", 0, none, Spec{2, 7}},
		{"6/7", 0, none, Spec{6, 7}},
		{"007/10", 0, none, Spec{7, 10}},
		{"99998/99999", 0, none, Spec{99998, 99999}},
		// Slurm: --array=0-6 (MIN 0), --array=1-7 (MIN 1), --array=0-12:2 (STEP 2).
		{"env", 0, env("SLURM_ARRAY_TASK_ID", "3", "SLURM_ARRAY_TASK_MIN", "0", "SLURM_ARRAY_TASK_COUNT", "7"), Spec{3, 7}},
		{"env", 0, env("SLURM_ARRAY_TASK_ID", "7", "SLURM_ARRAY_TASK_MIN", "1", "SLURM_ARRAY_TASK_COUNT", "7"), Spec{6, 7}},
		{"env", 0, env("SLURM_ARRAY_TASK_ID", "12", "SLURM_ARRAY_TASK_MIN", "2", "SLURM_ARRAY_TASK_STEP", "2", "SLURM_ARRAY_TASK_COUNT", "6"), Spec{5, 6}},
		{"env", 0, env("SLURM_ARRAY_TASK_ID", "4", "SLURM_ARRAY_TASK_COUNT", "5"), Spec{4, 5}}, // MIN unset: 0
		{"env", 5, env("SLURM_ARRAY_TASK_ID", "4", "SLURM_ARRAY_TASK_MIN", "0", "SLURM_ARRAY_TASK_COUNT", "5"), Spec{4, 5}},
		{"env", 0, env("SLURM_ARRAY_TASK_ID", "4", "SLURM_ARRAY_TASK_COUNT", "5", "CLIPLINE_SHARD_COUNT", "5"), Spec{4, 5}},
		// Kubernetes: the count from --shard-count, else CLIPLINE_SHARD_COUNT.
		{"env", 4, env("JOB_COMPLETION_INDEX", "0"), Spec{0, 4}},
		{"env", 0, env("JOB_COMPLETION_INDEX", "3", "CLIPLINE_SHARD_COUNT", "4"), Spec{3, 4}},
		{"env", 8, env("JOB_COMPLETION_INDEX", "3", "CLIPLINE_SHARD_COUNT", "4"), Spec{3, 8}}, // the flag wins
	} {
		got, err := Parse(tc.value, tc.count, tc.env)
		if err != nil {
			t.Errorf("Parse(%q, %d): %v", tc.value, tc.count, err)
		} else if got != tc.want {
			t.Errorf("Parse(%q, %d) = %v, want %v", tc.value, tc.count, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	none := env()
	slurm := func(id, min, count string) func(string) (string, bool) {
		return env("SLURM_ARRAY_TASK_ID", id, "SLURM_ARRAY_TASK_MIN", min, "SLURM_ARRAY_TASK_COUNT", count)
	}
	for _, tc := range []struct {
		value string
		count int
		env   func(string) (string, bool)
		want  string // in the message
	}{
		{"3", 0, none, `--shard "3": want K/N`},
		{"1/", 0, none, "want K/N"},
		{"/4", 0, none, "want K/N"},
		{"-1/4", 0, none, "want K/N"},
		{"+1/4", 0, none, "want K/N"},
		{"1 /4", 0, none, "want K/N"},
		{"a/b", 0, none, "want K/N"},
		{"1/2/3", 0, none, "want K/N"},
		{"4/4", 0, none, "--shard 4/4: part 4 does not exist: parts are numbered 0 to 3"},
		{"0/0", 0, none, "the number of parts must be 1 to 99999, not 0"},
		{"0/100000", 0, none, "not 100000"},
		{"1/4", 4, none, "--shard-count 4 goes with --shard env"},
		{"", 4, none, "--shard-count 4 needs --shard env"},
		{"env", 0, none, "--shard env: neither SLURM_ARRAY_TASK_ID (a Slurm array task) nor JOB_COMPLETION_INDEX"},
		{"env", 0, env("SLURM_ARRAY_TASK_ID", "1", "JOB_COMPLETION_INDEX", "1"), "both SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX are set"},
		{"env", 0, env("SLURM_ARRAY_TASK_ID", "1"), "SLURM_ARRAY_TASK_COUNT is not set"},
		{"env", 0, slurm("x", "0", "4"), `SLURM_ARRAY_TASK_ID="x": not a non-negative number`},
		{"env", 0, slurm("0", "1", "4"), "SLURM_ARRAY_TASK_ID=0 is not SLURM_ARRAY_TASK_MIN=1 plus a multiple"},
		{"env", 0, env("SLURM_ARRAY_TASK_ID", "3", "SLURM_ARRAY_TASK_MIN", "0", "SLURM_ARRAY_TASK_STEP", "2", "SLURM_ARRAY_TASK_COUNT", "4"), "SLURM_ARRAY_TASK_STEP=2"},
		{"env", 0, slurm("9", "5", "4"), "part 4 does not exist"}, // --array=5,6,7,9: not a range
		{"env", 3, slurm("1", "0", "4"), "3 parts expected (--shard-count or CLIPLINE_SHARD_COUNT) but SLURM_ARRAY_TASK_COUNT=4"},
		{"env", 0, env("SLURM_ARRAY_TASK_ID", "17", "SLURM_ARRAY_TASK_MIN", "17", "SLURM_ARRAY_TASK_COUNT", "1", "CLIPLINE_SHARD_COUNT", "100"), "100 parts expected"},
		{"env", 0, env("JOB_COMPLETION_INDEX", "2"), "JOB_COMPLETION_INDEX=2 gives the part but not the number of parts: pass --shard-count N or set CLIPLINE_SHARD_COUNT"},
		{"env", 0, env("JOB_COMPLETION_INDEX", "2", "CLIPLINE_SHARD_COUNT", "two"), `CLIPLINE_SHARD_COUNT="two"`},
		{"env", 2, env("JOB_COMPLETION_INDEX", "2"), "part 2 does not exist: parts are numbered 0 to 1"},
		{"env", -1, env("JOB_COMPLETION_INDEX", "0"), "--shard-count -1 must be positive"},
	} {
		_, err := Parse(tc.value, tc.count, tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q, %d): error %v, want one containing %q", tc.value, tc.count, err, tc.want)
		}
	}
}

// TestRange checks that the parts of every n cover 0..n once, in order,
// with sizes differing by at most one.
func TestRange(t *testing.T) {
	for n := 0; n <= 30; n++ {
		for parts := 1; parts <= 9; parts++ {
			next, smallest, largest := 0, n, 0
			for k := range parts {
				lo, hi := Spec{k, parts}.Range(n)
				if lo != next || hi < lo {
					t.Fatalf("n=%d part %d/%d: [%d, %d) after %d", n, k, parts, lo, hi, next)
				}
				next = hi
				smallest, largest = min(smallest, hi-lo), max(largest, hi-lo)
			}
			if next != n || largest-smallest > 1 {
				t.Fatalf("n=%d in %d parts: end %d, sizes %d..%d", n, parts, next, smallest, largest)
			}
		}
	}
	if lo, hi := (Spec{}).Range(5); lo != 0 || hi != 5 {
		t.Errorf("unsharded Range(5) = [%d, %d)", lo, hi)
	}
}

func TestOutput(t *testing.T) {
	dir := t.TempDir()
	if got, err := (Spec{}).Output("x.arrow"); err != nil || got != "x.arrow" {
		t.Errorf("unsharded Output = %q, %v", got, err)
	}
	out := filepath.Join(dir, "a", "b")
	got, err := Spec{3, 7}.Output(out)
	if want := filepath.Join(out, "part-00003-of-00007.arrow"); err != nil || got != want {
		t.Errorf("Output = %q, %v; want %q", got, err, want)
	}
	if st, err := os.Stat(out); err != nil || !st.IsDir() {
		t.Errorf("Output did not create %s: %v", out, err)
	}
	if _, err := (Spec{0, 2}).Output("-"); err == nil || !strings.Contains(err.Error(), "--shard 0/2 writes DIR/part-00000-of-00002.arrow: give --out DIR") {
		t.Errorf("stdout: %v", err)
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := (Spec{0, 2}).Output(file); err == nil || !strings.Contains(err.Error(), "must be a directory") {
		t.Errorf("a file as --out: %v", err)
	}
}
