package shard_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/clipline/clipline/internal/dataset/webdataset/wdstest"
	"github.com/clipline/clipline/internal/shard"
	"github.com/clipline/clipline/internal/shard/shardtest"
)

// The array job examples of docs/scale.md, relative to this package.
const (
	docPath   = "../../docs/scale.md"
	slurmPath = "../../examples/scale/prepare.sbatch"
	k8sPath   = "../../examples/scale/prepare-job.yaml"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestExamplesInDocs: docs/scale.md shows each example file whole, as it is.
func TestExamplesInDocs(t *testing.T) {
	doc := readFile(t, docPath)
	for _, path := range []string{slurmPath, k8sPath} {
		name := strings.TrimPrefix(path, "../../")
		lang := map[string]string{".sbatch": "bash", ".yaml": "yaml"}[filepath.Ext(path)]
		block := "<!-- " + name + " -->\n```" + lang + "\n" + readFile(t, path) + "```\n"
		if !strings.Contains(doc, block) {
			t.Errorf("docs/scale.md does not show %s as it is (after <!-- %s -->)", name, name)
		}
	}
}

// stageLines are the lines of script that run a sharded stage, joined with
// their continuation lines.
func stageLines(script string) []string {
	var out []string
	joined := strings.ReplaceAll(script, "\\\n", " ")
	for _, line := range strings.Split(joined, "\n") {
		line = strings.TrimSpace(line)
		if regexp.MustCompile(`^(prepare|tokenize|decode|embed) `).MatchString(line) {
			out = append(out, line)
		}
	}
	return out
}

// TestSlurmScript: bash parses the script, its array has as many tasks as
// CLIPLINE_SHARD_COUNT says, and every stage it runs is sharded into a
// directory.
func TestSlurmScript(t *testing.T) {
	if out, err := exec.Command("bash", "-n", slurmPath).CombinedOutput(); err != nil {
		t.Fatalf("bash -n %s: %v\n%s", slurmPath, err, out)
	}
	script := readFile(t, slurmPath)
	m := regexp.MustCompile(`(?m)^#SBATCH --array=(\d+)-(\d+)(%\d+)?$`).FindStringSubmatch(script)
	c := regexp.MustCompile(`(?m)^export CLIPLINE_SHARD_COUNT=(\d+)$`).FindStringSubmatch(script)
	if m == nil || c == nil {
		t.Fatalf("%s lacks #SBATCH --array=A-B or export CLIPLINE_SHARD_COUNT=N", slurmPath)
	}
	lo, _ := strconv.Atoi(m[1])
	hi, _ := strconv.Atoi(m[2])
	if n, _ := strconv.Atoi(c[1]); hi-lo+1 != n {
		t.Errorf("--array=%s-%s has %d tasks, CLIPLINE_SHARD_COUNT=%d", m[1], m[2], hi-lo+1, n)
	}
	checkStages(t, slurmPath, stageLines(script), `--shard "$SHARD"`)
}

func checkStages(t *testing.T, path string, lines []string, shardFlag string) {
	t.Helper()
	if len(lines) != 3 {
		t.Errorf("%s runs %d stages, want prepare, tokenize and decode: %q", path, len(lines), lines)
	}
	for _, l := range lines {
		if !strings.Contains(l, shardFlag+" ") || !strings.Contains(l, " --out ") {
			t.Errorf("%s: %q lacks %s or --out DIR", path, l, shardFlag)
		}
	}
}

// job is the part of a batch/v1 Job that the manifest uses, with the
// Kubernetes API's field names: a key that is not one of them (misspelt, or
// at the wrong level) fails TestIndexedJob.
type job struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		CompletionMode       string `yaml:"completionMode"`
		Completions          int    `yaml:"completions"`
		Parallelism          int    `yaml:"parallelism"`
		BackoffLimitPerIndex *int   `yaml:"backoffLimitPerIndex"`
		MaxFailedIndexes     *int   `yaml:"maxFailedIndexes"`
		Template             struct {
			Spec struct {
				RestartPolicy string `yaml:"restartPolicy"`
				Containers    []struct {
					Name    string   `yaml:"name"`
					Image   string   `yaml:"image"`
					Command []string `yaml:"command"`
					Args    []string `yaml:"args"`
					Env     []struct {
						Name  string `yaml:"name"`
						Value string `yaml:"value"`
					} `yaml:"env"`
					Resources struct {
						Requests map[string]string `yaml:"requests"`
						Limits   map[string]string `yaml:"limits"`
					} `yaml:"resources"`
					VolumeMounts []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
						ReadOnly  bool   `yaml:"readOnly"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
				Volumes []struct {
					Name                  string `yaml:"name"`
					PersistentVolumeClaim struct {
						ClaimName string `yaml:"claimName"`
					} `yaml:"persistentVolumeClaim"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// TestIndexedJob: the manifest is YAML for an Indexed batch/v1 Job whose
// CLIPLINE_SHARD_COUNT equals its completions, restartPolicy is Never (what
// backoffLimitPerIndex requires), its volumes exist, and its script parses
// in bash and runs every stage with --shard env into a directory.
func TestIndexedJob(t *testing.T) {
	var j job
	dec := yaml.NewDecoder(strings.NewReader(readFile(t, k8sPath)))
	dec.KnownFields(true)
	if err := dec.Decode(&j); err != nil {
		t.Fatalf("%s: %v", k8sPath, err)
	}
	s := j.Spec
	if j.APIVersion != "batch/v1" || j.Kind != "Job" || s.CompletionMode != "Indexed" || s.Completions < 1 || s.Parallelism < 1 {
		t.Errorf("%s: %s %s, completionMode %q, completions %d, parallelism %d: want an Indexed batch/v1 Job",
			k8sPath, j.APIVersion, j.Kind, s.CompletionMode, s.Completions, s.Parallelism)
	}
	pod := s.Template.Spec
	if s.BackoffLimitPerIndex != nil && pod.RestartPolicy != "Never" {
		t.Errorf("backoffLimitPerIndex needs restartPolicy Never, not %q", pod.RestartPolicy)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	count := ""
	for _, e := range c.Env {
		if e.Name == shard.EnvCount {
			count = e.Value
		}
	}
	if count != strconv.Itoa(s.Completions) {
		t.Errorf("%s=%q, want the completions, %d", shard.EnvCount, count, s.Completions)
	}
	volumes := map[string]bool{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = true
	}
	for _, m := range c.VolumeMounts {
		if !volumes[m.Name] {
			t.Errorf("volume mount %s names no volume", m.Name)
		}
	}
	if len(c.Command) != 2 || c.Command[0] != "/bin/bash" || c.Command[1] != "-c" || len(c.Args) != 1 {
		t.Fatalf("command %q args %q: want /bin/bash -c SCRIPT", c.Command, c.Args)
	}
	if out, err := exec.Command("bash", "-n", "-c", c.Args[0]).CombinedOutput(); err != nil {
		t.Errorf("bash -n of the pod's script: %v\n%s", err, out)
	}
	checkStages(t, k8sPath, stageLines(c.Args[0]), "--shard env")
}

// TestSlurmScriptRuns runs the script itself with bash, as Slurm runs its
// tasks, on three small webdataset shards with the embedded base model:
// three tasks named by SHARD=K/3 (a resubmission's way), whose pixels parts
// read as one directory equal the unsharded pipeline's output; a task with
// --shard env as Slurm numbers it; and one of an array resubmitted in part,
// which fails instead of writing a wrong part.
func TestSlurmScriptRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three stages")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-ldflags=-s -w", "-o", bin+string(filepath.Separator), "./prepare", "./tokenize", "./decode")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	model, err := filepath.Abs("../../testdata/base-model")
	if err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs(slurmPath)
	if err != nil {
		t.Fatal(err)
	}
	shards := filepath.Join(t.TempDir(), "shards")
	os.Mkdir(shards, 0o755)
	n := 0
	for f, count := range []int{4, 2, 3} {
		var members []wdstest.Member
		for range count {
			key := fmt.Sprintf("%09d", n)
			members = append(members, wdstest.Member{Name: key + ".jpg", Data: wdstest.Image(t, "jpeg", uint8(n))},
				wdstest.Member{Name: key + ".txt", Data: fmt.Sprint("a picture number ", n)})
			n++
		}
		wdstest.WriteShard(t, filepath.Join(shards, fmt.Sprintf("%05d.tar", f)), false, members)
	}
	// task runs the script with DATA holding the shards and env added.
	task := func(t *testing.T, data string, env ...string) ([]byte, error) {
		t.Helper()
		if err := os.Symlink(shards, filepath.Join(data, "shards")); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
		cmd := exec.Command("bash", script)
		cmd.Dir = data
		cmd.Env = append(os.Environ(), append([]string{"DATA=" + data, "MODEL=" + model, "CLIPLINE=" + bin, "SLURM_CPUS_PER_TASK=2",
			"SLURM_ARRAY_TASK_ID=", "SHARD="}, env...)...)
		cmd.Env = effectiveEnv(cmd.Env)
		return cmd.CombinedOutput()
	}

	// The unsharded pipeline: the script's stages without --shard.
	ref := t.TempDir()
	stage := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(filepath.Join(bin, name), args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	stage("prepare", "webdataset", shards, "--val-frac", "0.001", "--test-frac", "0.001", "--seed", "1", "--out", filepath.Join(ref, "prepared.arrow"))
	stage("tokenize", "--model", model, "--in", filepath.Join(ref, "prepared.arrow"), "--out", filepath.Join(ref, "tokens.arrow"))
	stage("decode", "--model", model, "--in", filepath.Join(ref, "tokens.arrow"), "--out", filepath.Join(ref, "pixels.arrow"))

	data := t.TempDir()
	for k := range 3 {
		if out, err := task(t, data, fmt.Sprintf("SHARD=%d/3", k)); err != nil {
			t.Fatalf("task %d/3: %v\n%s", k, err, out)
		}
	}
	shardtest.Equal(t, "the script's 3 parts", shardtest.Read(t, filepath.Join(ref, "pixels.arrow")), shardtest.Read(t, filepath.Join(data, "pixels")))

	// Task 7 of --array=5-104 (100 tasks) is part 2 of 100.
	data = t.TempDir()
	if out, err := task(t, data, "SLURM_ARRAY_TASK_ID=7", "SLURM_ARRAY_TASK_MIN=5", "SLURM_ARRAY_TASK_COUNT=100"); err != nil {
		t.Fatalf("--shard env task: %v\n%s", err, out)
	}
	for _, step := range []string{"prepared", "tokens", "pixels"} {
		if _, err := os.Stat(filepath.Join(data, step, "part-00002-of-00100.arrow")); err != nil {
			t.Errorf("the --shard env task did not write its %s part: %v", step, err)
		}
	}
	// sbatch --array=17 alone: task 0 of 1 to Slurm.
	out, err := task(t, t.TempDir(), "SLURM_ARRAY_TASK_ID=17", "SLURM_ARRAY_TASK_MIN=17", "SLURM_ARRAY_TASK_COUNT=1")
	if err == nil || !strings.Contains(string(out), "100 parts expected (--shard-count or CLIPLINE_SHARD_COUNT) but SLURM_ARRAY_TASK_COUNT=1") {
		t.Errorf("a task of an array resubmitted in part: %v\n%s", err, out)
	}
}

// effectiveEnv keeps the last entry of each name in env, and drops "NAME="
// entries: a later "NAME=" unsets NAME for the child.
func effectiveEnv(env []string) []string {
	last := map[string]int{}
	for i, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		last[name] = i
	}
	var out []string
	for i, kv := range env {
		name, v, _ := strings.Cut(kv, "=")
		if last[name] == i && v != "" {
			out = append(out, kv)
		}
	}
	return out
}
