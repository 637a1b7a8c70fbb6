package dataset

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// Inputs expands a source's arguments into the files to read, in order: a
// file is itself, a directory the files in it (not below) that match,
// sorted by name, so a dataset's folder is one argument. kind names the
// source in errors and what describes the files matched (".parquet").
func Inputs(kind, what string, args []string, match func(name string) bool) ([]string, error) {
	var out []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", kind, err)
		}
		if !st.IsDir() {
			out = append(out, a)
			continue
		}
		ents, err := os.ReadDir(a)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", kind, err)
		}
		var found []string
		for _, e := range ents {
			if !e.IsDir() && match(e.Name()) {
				found = append(found, filepath.Join(a, e.Name()))
			}
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: no %s files in directory %s", kind, what, a)
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	if len(out) == 0 {
		return nil, errors.New(kind + ": no files given")
	}
	return out, nil
}

// ReportRead writes the summary of a source read from files to w (nil:
// none): "prepare: 3 parquet files, 120 rows, skipped 2 bad rows", and,
// when no split was drawn or given by the data, which split all went to.
func ReportRead(w io.Writer, files int, filesName string, items int, itemsName string, bad int, oneSplit string) {
	if w == nil {
		return
	}
	fmt.Fprintf(w, "prepare: %d %s, %d %s", files, filesName, items, itemsName)
	if bad > 0 {
		fmt.Fprintf(w, ", skipped %d bad %s", bad, itemsName)
	}
	fmt.Fprintln(w)
	if oneSplit != "" {
		fmt.Fprintf(w, "prepare: every image is in split %s; --val-frac and --test-frac hold some out for validation and testing\n", oneSplit)
	}
}
