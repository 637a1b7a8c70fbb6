package train

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/clipline/clipline/internal/config"
)

// An output_dir belongs to one run. Before a run starts, CheckOutputDir
// refuses a directory that is not empty, so that a re-run never leaves an
// earlier run's checkpoint-12 beside its own checkpoint-4 and -8:
//
//   - --resume continues a run: output_dir may hold the run being resumed
//     (the checkpoint is inside it, or output_dir is empty).
//   - --overwrite (overwrite_output_dir) starts over: the entries a clipline
//     run writes (checkpoint-STEP/, best/ and final/ holding
//     training_config.yaml, metrics.jsonl, and their temporaries) are
//     removed first; any other file is kept, and one whose name the run
//     would write is a refusal.
//   - cache/ holding only .arrow files (the default cache_dir, where train
//     spools its inputs: internal/traindata) is no part of a run: neither
//     counted nor removed.
//   - Otherwise the error says what the directory holds and the two ways
//     out. A clipline run there is "of the same configuration" when its
//     training_config.yaml (of its newest checkpoint, or final/) equals the
//     effective configuration in every key that changes the weights (all
//     but sameRunKeys): continuing it is then safe, with --resume.

// sameRunKeys are the keys that do not change the trained weights: two
// configurations differing only in them describe the same run.
var sameRunKeys = map[string]bool{"output_dir": true, "overwrite_output_dir": true, "logging_steps": true,
	"save_steps": true, "save_strategy": true, "save_total_limit": true, "save_only_model": true,
	"eval_strategy": true, "eval_steps": true, "val_split": true, "device": true, "model_name_or_path": true,
	"cache_dir": true}

// CacheDirName is the default cache_dir inside output_dir, where train
// spools inputs it cannot memory-map as they are (internal/traindata).
const CacheDirName = "cache"

var checkpointRE = regexp.MustCompile(`^checkpoint-([0-9]+)$`)

// runDir is what CheckOutputDir found in an output_dir.
type runDir struct {
	ours, foreign []string // entry names
	checkpoints   []int    // steps of checkpoint-STEP directories, ascending
	finished      bool     // final/ is there
}

// isOurs tells whether entry e of dir was written by a clipline run.
func isOurs(dir string, e os.DirEntry) bool {
	n := e.Name()
	switch {
	case n == "metrics.jsonl":
		return e.Type().IsRegular()
	case n == "runs":
		return e.IsDir() && onlyEventFiles(filepath.Join(dir, n))
	case strings.HasPrefix(n, tmpPrefix), strings.HasPrefix(n, oldPrefix):
		rest := strings.TrimPrefix(strings.TrimPrefix(n, tmpPrefix), oldPrefix)
		return e.IsDir() && (strings.HasPrefix(rest, "checkpoint-") || strings.HasPrefix(rest, "best-") || strings.HasPrefix(rest, "final-"))
	case n == "best", n == "final", checkpointRE.MatchString(n):
		_, err := os.Stat(filepath.Join(dir, n, ConfigFile))
		return e.IsDir() && err == nil
	}
	return false
}

// onlySpools tells whether dir holds .arrow files (and their temporaries:
// stream.Create's ".NAME.tmp-*") only, as train's spooling writes them.
func onlySpools(dir string) bool {
	return onlyFiles(dir, func(n string) bool {
		return strings.HasSuffix(n, ".arrow") || strings.HasPrefix(n, ".") && strings.Contains(n, ".arrow.tmp-")
	})
}

// onlyEventFiles tells whether dir holds event files only, as
// report_to: tensorboard writes them (Hugging Face's runs/ has a
// subdirectory per run, and is left alone).
func onlyEventFiles(dir string) bool {
	return onlyFiles(dir, func(n string) bool { return strings.HasPrefix(n, "events.out.tfevents.") })
}

// onlyFiles tells whether dir holds only regular files whose names pass ok.
func onlyFiles(dir string, ok func(name string) bool) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !ok(e.Name()) {
			return false
		}
	}
	return true
}

func readRunDir(dir string) (*runDir, error) {
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return &runDir{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("train: output_dir: %w", err)
	}
	r := &runDir{}
	for _, e := range ents {
		if e.Name() == CacheDirName && e.IsDir() && onlySpools(filepath.Join(dir, e.Name())) {
			continue // spooled inputs, not part of a run (the run's own are there by now)
		}
		if !isOurs(dir, e) {
			r.foreign = append(r.foreign, e.Name())
			continue
		}
		r.ours = append(r.ours, e.Name())
		if m := checkpointRE.FindStringSubmatch(e.Name()); m != nil {
			n, _ := strconv.Atoi(m[1])
			r.checkpoints = append(r.checkpoints, n)
		}
		r.finished = r.finished || e.Name() == "final"
	}
	sort.Ints(r.checkpoints)
	return r, nil
}

// CheckOutputDir makes cfg.OutputDir ready for a run, or says why it is not
// (see above); resume is --resume's checkpoint ("" for none). With
// overwrite_output_dir it removes the earlier run's entries, reporting on
// log. Cheap when the directory is empty: the train stage calls it before
// reading data, and New again.
func CheckOutputDir(cfg config.Config, resume string, log io.Writer) error {
	dir := cfg.OutputDir
	r, err := readRunDir(dir)
	if err != nil {
		return err
	}
	if len(r.ours)+len(r.foreign) == 0 {
		return nil
	}
	inside := resume != "" && within(resume, dir)
	if cfg.OverwriteOutputDir {
		if inside {
			return fmt.Errorf("train: --overwrite would remove %s, which --resume reads; drop one of the two", resume)
		}
		for _, n := range r.foreign {
			if n == "best" || n == "final" || n == "metrics.jsonl" || checkpointRE.MatchString(n) {
				return fmt.Errorf("train: output_dir %s: %s was not written by clipline (no %s), and this run would replace it; move it away or choose another --out",
					dir, n, ConfigFile)
			}
		}
		for _, n := range r.ours {
			if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
				return fmt.Errorf("train: --overwrite: %w", err)
			}
		}
		if len(r.ours) > 0 && log != nil {
			fmt.Fprintf(log, "train: --overwrite: removed the earlier run's %s from %s\n", strings.Join(r.ours, ", "), dir)
		}
		return nil
	}
	if inside {
		return nil
	}
	if len(r.ours) == 0 {
		return fmt.Errorf("train: output_dir %s is not empty (%s) and holds no clipline run; pass --overwrite to write into it anyway (it removes only clipline's files) or choose another --out",
			dir, brief(r.foreign))
	}
	if resume != "" {
		return fmt.Errorf("train: output_dir %s holds another run (%s) than the one --resume %s continues; pass --overwrite to replace it or choose another --out",
			dir, brief(r.ours), resume)
	}
	saved := ""
	if n := len(r.checkpoints); n > 0 {
		saved = filepath.Join(dir, fmt.Sprintf(checkpointFmt, r.checkpoints[n-1]))
	} else if r.finished {
		saved = filepath.Join(dir, "final")
	}
	var diff []keyDiff
	if saved != "" {
		if diff, err = configDiff(filepath.Join(saved, ConfigFile), cfg); err != nil {
			return err
		}
	}
	switch {
	case saved == "" || len(diff) > 0:
		what := "a clipline run"
		if len(diff) > 0 {
			what += fmt.Sprintf(" of another configuration (%s %s there, %s here)", diff[0].key, diff[0].saved, diff[0].cur)
		}
		return fmt.Errorf("train: output_dir %s holds %s; pass --overwrite to replace it or choose another --out", dir, what)
	case r.finished:
		return fmt.Errorf("train: output_dir %s holds a finished run of this configuration; pass --overwrite to run it again or choose another --out", dir)
	case !resumable(saved):
		return fmt.Errorf("train: output_dir %s holds an unfinished run of this configuration whose %s has no optimizer state (save_only_model); pass --overwrite to start over or choose another --out",
			dir, filepath.Base(saved))
	}
	return fmt.Errorf("train: output_dir %s holds an unfinished run of this configuration; continue it with --resume %s or start over with --overwrite", dir, saved)
}

// keyDiff is a key whose value differs between a saved configuration and
// the effective one.
type keyDiff struct{ key, saved, cur string }

// configDiff lists the keys in which the configuration saved at path
// differs from cur, ignoring sameRunKeys.
func configDiff(path string, cur config.Config) ([]keyDiff, error) {
	l, err := config.Load(config.Options{File: path, Warn: io.Discard})
	if err != nil {
		return nil, fmt.Errorf("train: %s: %w", path, err)
	}
	oy, cy := yamlMap(l.Config.YAML()), yamlMap(cur.YAML())
	var out []keyDiff
	for _, k := range config.Keys() {
		if !sameRunKeys[k] && oy[k] != cy[k] {
			out = append(out, keyDiff{k, oy[k], cy[k]})
		}
	}
	return out, nil
}

// resumable tells whether checkpoint dir has the optimizer state --resume
// needs.
func resumable(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, OptimizerFile))
	return err == nil
}

// within tells whether path is dir or lies under it.
func within(path, dir string) bool {
	p, err1 := filepath.Abs(path)
	d, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// brief names up to three entries.
func brief(names []string) string {
	if len(names) > 3 {
		return strings.Join(names[:3], ", ") + fmt.Sprintf(" and %d more", len(names)-3)
	}
	return strings.Join(names, ", ")
}

// pruneCheckpoints removes the oldest checkpoint-STEP directories beyond
// save_total_limit; best/ and final/ are not checkpoints and stay.
func (t *Trainer) pruneCheckpoints() error {
	limit := t.cfg.SaveTotalLimit
	if limit <= 0 {
		return nil
	}
	r, err := readRunDir(t.cfg.OutputDir)
	if err != nil {
		return err
	}
	for _, n := range r.checkpoints[:max(0, len(r.checkpoints)-limit)] {
		p := filepath.Join(t.cfg.OutputDir, fmt.Sprintf(checkpointFmt, n))
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("train: save_total_limit: %w", err)
		}
		fmt.Fprintf(t.log, "train: removed %s (save_total_limit %d)\n", p, limit)
	}
	return nil
}
