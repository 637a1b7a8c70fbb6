package shard

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
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
		if e.Name == EnvCount {
			count = e.Value
		}
	}
	if count != strconv.Itoa(s.Completions) {
		t.Errorf("%s=%q, want the completions, %d", EnvCount, count, s.Completions)
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
