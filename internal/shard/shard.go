// Package shard is the --shard K/N of the data stages (prepare, tokenize,
// decode, embed): which part of the input one task of a batch scheduler's
// array processes, and the part file it writes. A task's index and the
// number of tasks come from the command line ("2/7") or, with "env", from
// the variables Slurm array jobs and Kubernetes Indexed Jobs set, so one
// command line serves every task of the array.
package shard

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// MaxParts is the most parts a run may have: part names carry five digits.
const MaxParts = 99999

// Spec is part K (0-based) of N. The zero Spec means "not sharded".
type Spec struct{ K, N int }

// Sharded reports whether s names a part (N > 0).
func (s Spec) Sharded() bool { return s.N > 0 }

// String is s as --shard takes it, "K/N".
func (s Spec) String() string { return fmt.Sprintf("%d/%d", s.K, s.N) }

// Range is the part's share [lo, hi) of n items: the K-th of N contiguous
// ranges [K*n/N, (K+1)*n/N), so the parts cover 0..n in order and differ
// in size by at most one. Unsharded, it is all of them.
func (s Spec) Range(n int) (lo, hi int) {
	if !s.Sharded() {
		return 0, n
	}
	return s.K * n / s.N, (s.K + 1) * n / s.N
}

// Variables that --shard env reads.
const (
	EnvSlurmID    = "SLURM_ARRAY_TASK_ID"
	EnvSlurmMin   = "SLURM_ARRAY_TASK_MIN"
	EnvSlurmStep  = "SLURM_ARRAY_TASK_STEP"
	EnvSlurmCount = "SLURM_ARRAY_TASK_COUNT"
	EnvK8sIndex   = "JOB_COMPLETION_INDEX"
	// EnvCount gives the number of parts where the scheduler does not (a
	// Kubernetes Job's completions are not in its pods' environment).
	EnvCount = "CLIPLINE_SHARD_COUNT"
)

// Parse reads --shard's value: "K/N" (0 <= K < N <= MaxParts) or "env".
// count is --shard-count (0 when not given); lookup reads the environment
// (os.LookupEnv). "" is the unsharded zero Spec.
//
// With env, a Slurm array task (SLURM_ARRAY_TASK_ID set) is part
// (ID - SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP of
// SLURM_ARRAY_TASK_COUNT, so --array=1-8 and --array=0-14:2 number their
// tasks 0..N-1 as --array=0-7 does; a count given as well (count, else
// $CLIPLINE_SHARD_COUNT) must agree, which catches a task of an array
// resubmitted in part (--array=17 is part 0 of 1 to Slurm). A
// Kubernetes Indexed Job's pod (JOB_COMPLETION_INDEX set) is part
// JOB_COMPLETION_INDEX of count, else of $CLIPLINE_SHARD_COUNT, which the
// manifest sets to the Job's completions.
func Parse(value string, count int, lookup func(string) (string, bool)) (Spec, error) {
	switch {
	case value == "":
		if count != 0 {
			return Spec{}, fmt.Errorf("--shard-count %d needs --shard env", count)
		}
		return Spec{}, nil
	case value == "env":
		s, err := fromEnv(count, lookup)
		if err != nil {
			return Spec{}, fmt.Errorf("--shard env: %w", err)
		}
		return s, nil
	case count != 0:
		return Spec{}, fmt.Errorf("--shard-count %d goes with --shard env, not --shard %s", count, value)
	}
	ks, ns, ok := strings.Cut(value, "/")
	k, errK := number(ks)
	n, errN := number(ns)
	if !ok || errK != nil || errN != nil {
		return Spec{}, fmt.Errorf("--shard %q: want K/N (part K of N, K counted from 0, e.g. 0/4) or env", value)
	}
	s := Spec{K: k, N: n}
	if err := s.check(); err != nil {
		return Spec{}, fmt.Errorf("--shard %s: %w", value, err)
	}
	return s, nil
}

func (s Spec) check() error {
	switch {
	case s.N < 1 || s.N > MaxParts:
		return fmt.Errorf("the number of parts must be 1 to %d, not %d", MaxParts, s.N)
	case s.K < 0 || s.K >= s.N:
		return fmt.Errorf("part %d does not exist: parts are numbered 0 to %d", s.K, s.N-1)
	}
	return nil
}

// number is a non-negative decimal without sign or spaces.
func number(s string) (int, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return strconv.Atoi(s)
}

func fromEnv(count int, lookup func(string) (string, bool)) (Spec, error) {
	if count < 0 {
		return Spec{}, fmt.Errorf("--shard-count %d must be positive", count)
	}
	_, slurm := lookup(EnvSlurmID)
	_, k8s := lookup(EnvK8sIndex)
	var s Spec
	var err error
	switch {
	case slurm && k8s:
		return Spec{}, fmt.Errorf("both %s and %s are set; unset the one that does not belong to this scheduler", EnvSlurmID, EnvK8sIndex)
	case slurm:
		s, err = fromSlurm(count, lookup)
	case k8s:
		s, err = fromKubernetes(count, lookup)
	default:
		return Spec{}, fmt.Errorf("neither %s (a Slurm array task) nor %s (a Kubernetes Indexed Job) is set; outside those, give --shard K/N", EnvSlurmID, EnvK8sIndex)
	}
	if err != nil {
		return Spec{}, err
	}
	return s, s.check()
}

func fromSlurm(count int, lookup func(string) (string, bool)) (Spec, error) {
	id, err := envNumber(lookup, EnvSlurmID, "")
	if err != nil {
		return Spec{}, err
	}
	lo, err := envNumber(lookup, EnvSlurmMin, "0")
	if err != nil {
		return Spec{}, err
	}
	step, err := envNumber(lookup, EnvSlurmStep, "1")
	if err != nil {
		return Spec{}, err
	}
	n, err := envNumber(lookup, EnvSlurmCount, "")
	if err != nil {
		return Spec{}, err
	}
	if step < 1 {
		step = 1
	}
	if id < lo || (id-lo)%step != 0 {
		return Spec{}, fmt.Errorf("%s=%d is not %s=%d plus a multiple of %s=%d; use a range --array=A-B[:S]", EnvSlurmID, id, EnvSlurmMin, lo, EnvSlurmStep, step)
	}
	if count == 0 {
		if _, ok := lookup(EnvCount); ok {
			if count, err = envNumber(lookup, EnvCount, ""); err != nil {
				return Spec{}, err
			}
		}
	}
	if count != 0 && count != n {
		return Spec{}, fmt.Errorf("%d parts expected (--shard-count or %s) but %s=%d: a task of another array (an array resubmitted in part numbers its tasks anew; give its part as --shard K/N)", count, EnvCount, EnvSlurmCount, n)
	}
	return Spec{K: (id - lo) / step, N: n}, nil
}

func fromKubernetes(count int, lookup func(string) (string, bool)) (Spec, error) {
	k, err := envNumber(lookup, EnvK8sIndex, "")
	if err != nil {
		return Spec{}, err
	}
	n := count
	if n == 0 {
		if _, ok := lookup(EnvCount); !ok {
			return Spec{}, fmt.Errorf("%s=%d gives the part but not the number of parts: pass --shard-count N or set %s to the Job's completions", EnvK8sIndex, k, EnvCount)
		}
		if n, err = envNumber(lookup, EnvCount, ""); err != nil {
			return Spec{}, err
		}
	}
	return Spec{K: k, N: n}, nil
}

// envNumber reads a non-negative number from name; def, when not "", stands
// for an unset variable.
func envNumber(lookup func(string) (string, bool), name, def string) (int, error) {
	v, ok := lookup(name)
	if !ok {
		if def == "" {
			return 0, fmt.Errorf("%s is not set", name)
		}
		v = def
	}
	n, err := number(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("%s=%q: not a non-negative number", name, v)
	}
	return n, nil
}

// Flags are the two flags of a sharded stage; a stage's kong grammar embeds
// them (`embed:""`).
type Flags struct {
	Shard      string `placeholder:"K/N|env" help:"Write only part K (from 0) of N contiguous parts, as --out DIR/part-KKKKK-of-NNNNN.arrow (atomic: a retried task rewrites its part). env: the part of this Slurm array task (SLURM_ARRAY_TASK_*) or Kubernetes Indexed Job pod (JOB_COMPLETION_INDEX); docs/scale.md."`
	ShardCount int    `placeholder:"N" help:"With --shard env, the number of parts (default: $CLIPLINE_SHARD_COUNT): a Kubernetes Indexed Job's completions; under Slurm a check against the array's task count."`
}

// Spec is the part the flags name, reading the process's environment.
func (f Flags) Spec() (Spec, error) { return Parse(f.Shard, f.ShardCount, os.LookupEnv) }
