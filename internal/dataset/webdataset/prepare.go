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
//
// With wo.Part, the first pass reads every shard as before (so the draw,
// the columns and the image_id check are the whole dataset's) and the second
// only the part's contiguous range of the shard files: the parts concatenate
// to the unsharded stream, and each shard's images are read by one task.
func Prepare(shards []string, o PrepareOptions, wo dataset.WriteOptions) (Stats, error) {
	if err := o.Draw.Check(); err != nil {
		return Stats{}, err
	}
	if o.Split == "" {
		o.Split = dataset.Train
	}
	hasURL := false
	lo, hi := wo.Part.Range(len(shards))
	var first, before, part Stats // all shards; those before the part's; the part's
	var ids map[string]string     // image_id -> shard, to find duplicates across parts
	if wo.Part.Sharded() {
		ids = map[string]string{}
	}
	for i, sh := range shards {
		st, err := Scan([]string{sh}, Options{SkipBad: o.SkipBad}, func(s *Sample) error {
			hasURL = hasURL || s.URL != ""
			if ids == nil {
				return nil // the writer checks them
			}
			if other, dup := ids[s.ID]; dup {
				return fmt.Errorf("webdataset %s: sample %s: image_id %q duplicates a sample of %s", s.Shard, s.Key, s.ID, other)
			}
			ids[s.ID] = s.Shard
			return nil
		})
		first = first.add(st)
		if err != nil {
			return first, err
		}
		if i < lo {
			before = before.add(st)
		} else if i < hi {
			part = part.add(st)
		}
	}
	if first.Samples == first.Bad {
		return first, fmt.Errorf("webdataset: no usable samples in %d shards (%d bad)", first.Shards, first.Bad)
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
	st, err := Scan(shards[lo:hi], Options{Images: true, SkipBad: o.SkipBad, Log: o.Log}, func(s *Sample) error {
		if s.Index >= part.Samples {
			return fmt.Errorf("webdataset %s: sample %s: more samples than a moment ago (%d): did the shards change?", s.Shard, s.Key, part.Samples)
		}
		split := o.Split
		if i := before.Samples + s.Index; splits != nil && splits[i] != dataset.Train {
			split = splits[i]
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
	if st != part {
		return st, fmt.Errorf("webdataset: the shards changed while being read (%+v, then %+v)", part, st)
	}
	st.Report(o.Log, o)
	return st, w.Close()
}

// add sums two counts.
func (s Stats) add(t Stats) Stats {
	return Stats{Shards: s.Shards + t.Shards, Samples: s.Samples + t.Samples, Bad: s.Bad + t.Bad}
}

// Report writes prepare's summary of what was read and skipped to w (nil: none).
func (s Stats) Report(w io.Writer, o PrepareOptions) {
	one := ""
	if o.Draw.Zero() {
		one = o.Split
	}
	dataset.ReportRead(w, s.Shards, "webdataset shards", s.Samples, "samples", s.Bad, one)
}
