package dataset

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/stream"
)

// TestWrite: rows come back from the stream in order across record
// batches, with prepare's provenance; invalid rows write nothing.
func TestWrite(t *testing.T) {
	rows := make([]Row, batchRows+5)
	for i := range rows {
		rows[i] = Row{ImageID: fmt.Sprint(i), Split: Train, ImagePath: fmt.Sprintf("/img/%d.png", i), Captions: []string{"a", fmt.Sprint("caption ", i)}}
	}
	out := filepath.Join(t.TempDir(), "out.arrow")
	var log bytes.Buffer
	if err := Write(rows, WriteOptions{Out: out, Args: []string{"x"}, Log: &log}); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("prepare: %d images (train=%d), %d captions -> %s in", len(rows), len(rows), 2*len(rows), out); !strings.HasPrefix(log.String(), want) {
		t.Errorf("log %q, want %q...", log.String(), want)
	}
	r, err := stream.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if steps, err := stream.Provenance(r.Schema()); err != nil || len(steps) != 1 || steps[0].Stage != "prepare" || !slices.Equal(steps[0].Args, []string{"x"}) {
		t.Errorf("provenance %+v, %v", steps, err)
	}
	var got []Row
	for r.Next() {
		rec := r.Batch()
		ids, _ := stream.Strings(rec, stream.ColImageID)
		splits, _ := stream.Strings(rec, stream.ColSplit)
		paths, _ := stream.Strings(rec, stream.ColImagePath)
		caps, err := stream.StringLists(rec, stream.ColCaptions)
		if err != nil {
			t.Fatal(err)
		}
		for i := range ids {
			got = append(got, Row{ids[i], splits[i], paths[i], caps[i]})
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(got, rows, func(a, b Row) bool {
		return a.ImageID == b.ImageID && a.Split == b.Split && a.ImagePath == b.ImagePath && slices.Equal(a.Captions, b.Captions)
	}) {
		t.Fatalf("%d rows read back differ from the %d written", len(got), len(rows))
	}

	bad := filepath.Join(t.TempDir(), "bad.arrow")
	if err := Write([]Row{{ImageID: "a", Split: Train, ImagePath: "/a"}}, WriteOptions{Out: bad}); err == nil || !strings.Contains(err.Error(), "no captions") {
		t.Errorf("invalid rows: %v", err)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("invalid rows left %s (stat: %v)", bad, err)
	}
}
