package webdataset

import (
	"fmt"
	"io"

	"github.com/clipline/clipline/internal/dataset"
)

// PrepareOptions control Prepare.
type PrepareOptions struct {
	// Split names the split of every sample, or with Draw the train share
	// (default train).
	Split string
	// Draw, when it holds out val or test fractions, splits the samples by a
	// seeded draw over their order in the shards, bad ones included, so
	// skipping a bad sample leaves the others' splits as they were.
	Draw    dataset.Fractions
	SkipBad bool
	// Log receives one line per skipped sample and the summary (nil: none).
	Log io.Writer
}

// Prepare writes the shards' samples as prepare's stream (image_id, split,
// image_bytes, captions, and url when any metadata has one) through
// dataset.Writer, one batch of images in memory at a time. A first pass
// reads everything but the images (a plain tar seeks over them) to fail
// early on bad samples, count the samples for the draw and see whether there
// are urls; the second writes.
func Prepare(shards []string, o PrepareOptions, wo dataset.WriteOptions) (Stats, error) {
	if err := o.Draw.Check(); err != nil {
		return Stats{}, err
	}
	if o.Split == "" {
		o.Split = dataset.Train
	}
	hasURL := false
	first, err := Scan(shards, Options{SkipBad: o.SkipBad}, func(s *Sample) error {
		hasURL = hasURL || s.URL != ""
		return nil
	})
	if err != nil {
		return first, err
	}
	var splits []string
	if !o.Draw.Zero() {
		splits = o.Draw.Draw(first.Samples)
	}
	w, err := dataset.NewWriter(dataset.Columns{ImageBytes: true, URL: hasURL}, wo)
	if err != nil {
		return first, err
	}
	defer w.Abort() // no-op after a successful Close
	st, err := Scan(shards, Options{Images: true, SkipBad: o.SkipBad, Log: o.Log}, func(s *Sample) error {
		if s.Index >= first.Samples {
			return fmt.Errorf("webdataset %s: sample %s: more samples than a moment ago (%d): did the shards change?", s.Shard, s.Key, first.Samples)
		}
		split := o.Split
		if splits != nil && splits[s.Index] != dataset.Train {
			split = splits[s.Index]
		}
		r := dataset.Row{ImageID: s.ID, Split: split, ImageBytes: s.Image, Captions: []string{s.Caption}, URL: s.URL}
		if err := w.Add(r); err != nil {
			return fmt.Errorf("webdataset %s: sample %s: %w", s.Shard, s.Key, err)
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	if st != first {
		return st, fmt.Errorf("webdataset: the shards changed while being read (%+v, then %+v)", first, st)
	}
	if st.Samples == st.Bad {
		return st, fmt.Errorf("webdataset: no usable samples in %d shards (%d bad)", st.Shards, st.Bad)
	}
	st.Report(o.Log, o)
	return st, w.Close()
}

// Report writes prepare's summary of what was read and skipped to w (nil: none).
func (s Stats) Report(w io.Writer, o PrepareOptions) {
	if w == nil {
		return
	}
	fmt.Fprintf(w, "prepare: %d webdataset shards, %d samples", s.Shards, s.Samples)
	if s.Bad > 0 {
		fmt.Fprintf(w, ", skipped %d bad samples", s.Bad)
	}
	fmt.Fprintln(w)
	if o.Draw.Zero() {
		fmt.Fprintf(w, "prepare: every image is in split %s; --val-frac and --test-frac hold some out for validation and testing\n", o.Split)
	}
}
