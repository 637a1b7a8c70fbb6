// Package traindata is where train's data comes from: the --in (stdin by
// default) and --val streams, or a configuration's data_path and
// val_data_path, vembed-factory's files (JSONL, Karpathy JSON, Flickr30k
// CSV, or a clipline stream), which it prepares, tokenizes and decodes
// in-process with the stages' own code and caches (prepare.go).
//
// A flag beats the configuration, as everywhere: --in is read instead of
// data_path, --val instead of val_data_path. Without --in and data_path
// train reads stdin, and refuses a terminal there at once.
package traindata

import (
	"fmt"
	"io"
	"os"

	"github.com/clipline/clipline/internal/cli"
	"github.com/clipline/clipline/internal/config"
	"github.com/clipline/clipline/internal/stream"
	"github.com/clipline/clipline/internal/train"
)

// StdinExpected is what train expects on stdin, and how else to give it.
const StdinExpected = "an Arrow stream of tokenized rows with pixels or image_path; pass --in FILE, pipe one (tokenize ... | decode ... | train) or set data_path in --config"

// Sources say where the training and validation rows come from.
type Sources struct {
	cfg config.Config
	// In and Val are the streams of --in and --val ("" when not given).
	In, Val string
	// Where says where a configuration key was set, for messages.
	Where func(key string) string
	// CacheDir holds data_path's prepared data ("": DefaultCacheDir); the
	// spools of inputs that cannot be mapped go to cache_dir (spool.go).
	CacheDir string
	// Log receives progress and notes (nil: silent).
	Log io.Writer

	spoolDir string           // cache_dir: where inputs are spooled (spool.go)
	owned    bool             // spoolDir is the default one, inside output_dir
	spools   []string         // the spools this run reads
	inputs   []*stream.Reader // the open maps
}

// Resolve settles the sources before any work is done: a flag's stream
// over the configuration's file (saying so when both are given), and a
// terminal stdin refused when nothing else names the training data.
func Resolve(in, val string, cfg config.Config, where func(string) string, stdin *os.File, log io.Writer) (*Sources, error) {
	if log == nil {
		log = io.Discard
	}
	s := &Sources{cfg: cfg, In: in, Val: val, Where: where, Log: log, spoolDir: cfg.CacheDir}
	if s.spoolDir == "" {
		s.spoolDir, s.owned = DefaultSpoolDir(cfg.OutputDir), true
	}
	if in != "" && cfg.DataPath != "" {
		fmt.Fprintf(log, "train: reading --in %s; data_path %s (%s) is not read\n", stream.InputName(in), cfg.DataPath, where("data_path"))
	}
	if val != "" && cfg.ValDataPath != "" {
		fmt.Fprintf(log, "train: validating on --val %s; val_data_path %s (%s) is not read\n", val, cfg.ValDataPath, where("val_data_path"))
	}
	if in == "" && cfg.DataPath == "" {
		if cli.IsTerminal(stdin) {
			return nil, cli.TerminalStdin(StdinExpected)
		}
		s.In = "-"
	}
	return s, nil
}

// Load reads the training split and the validation split (nil when there
// is none or eval_strategy is no) for the model of ro, preparing and
// caching data_path and val_data_path as needed (dir is the model's
// directory, whose tokenizer and preprocessing they get). The pixels stay
// in the mapped inputs (spooled first where needed, spool.go): the Data
// are valid until Close.
func (s *Sources) Load(dir string, ro train.ReadOptions) (trainData, valData *train.Data, err error) {
	cfg := s.cfg
	ro.ImageRoot = cfg.ImageRoot
	sep := s.Val != "" || cfg.ValDataPath != "" // validation from its own file
	splits := []string{cfg.TrainSplit}
	if !sep && cfg.ValSplit != "" && cfg.ValSplit != cfg.TrainSplit {
		splits = append(splits, cfg.ValSplit)
	}
	name, path, err := s.stream(s.In, "data_path", cfg.DataPath, cfg.TrainSplit, dir)
	if err != nil {
		return nil, nil, err
	}
	data, err := s.readSplits(path, "train", splits, ro)
	if err != nil {
		return nil, nil, err
	}
	trainData, valData = data[cfg.TrainSplit], data[cfg.ValSplit]
	if trainData.Pairs() == 0 {
		return nil, nil, fmt.Errorf("%s: no (caption, image) pairs in split %q (--train-split)", name, cfg.TrainSplit)
	}
	if sep {
		vname, vpath, err := s.stream(s.Val, "val_data_path", cfg.ValDataPath, cfg.ValSplit, dir)
		if err != nil {
			return nil, nil, err
		}
		vd, err := s.readSplits(vpath, "val", []string{cfg.ValSplit}, ro)
		if err != nil {
			return nil, nil, err
		}
		if valData = vd[cfg.ValSplit]; valData.Pairs() == 0 {
			return nil, nil, fmt.Errorf("%s: no (caption, image) pairs in split %q (--val-split)", vname, cfg.ValSplit)
		}
		name = vname
	}
	if cfg.EvalStrategy == "no" {
		return trainData, nil, nil
	}
	if valData == nil || valData.Pairs() == 0 {
		fmt.Fprintf(s.Log, "warning: no validation pairs (split %q of %s); validation is skipped\n", cfg.ValSplit, name)
		valData = nil
	}
	return trainData, valData, nil
}

// stream is the stream to read for a flag's value or, when it is empty, a
// configuration key's file, prepared for the model in dir (rows without
// a split of their own in split); name is what messages call it.
func (s *Sources) stream(flag, key, file, split, dir string) (name, path string, err error) {
	if flag != "" {
		return stream.InputName(flag), flag, nil
	}
	path, err = Prepare(file, PrepareOptions{Key: key, Where: s.Where(key), Split: split,
		ImageRoot: s.cfg.ImageRoot, ModelDir: dir, CacheDir: s.CacheDir, Log: s.Log})
	return file, path, err
}

// readSplits maps path (role: train or val, for spool names) and reads
// its splits, pixels staying in the map.
func (s *Sources) readSplits(path, role string, splits []string, ro train.ReadOptions) (map[string]*train.Data, error) {
	r, err := s.open(path, role, ro)
	if err != nil {
		return nil, err
	}
	s.inputs = append(s.inputs, r)
	ro.Mapped = true
	return train.ReadSplits(r, splits, ro)
}

// Close unmaps the inputs (the Data that Load returned are invalid after
// it) and removes this run's spools from the default cache directory
// unless keep (an interrupted run, to be resumed).
func (s *Sources) Close(keep bool) error {
	var first error
	for _, r := range s.inputs {
		if err := r.Close(); err != nil && first == nil {
			first = err
		}
	}
	s.inputs = nil
	if s.owned && !keep {
		for _, p := range s.spools {
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) && first == nil {
				first = err
			}
		}
		os.Remove(s.spoolDir) // only when empty
	}
	return first
}
