package stream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

var (
	streamHead = []byte{0xff, 0xff, 0xff, 0xff}
	streamTail = []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}
)

// isFile tells the IPC file format (magic at both ends) from a stream
// (continuation marker first, end-of-stream marker last) by bytes alone.
func isFile(t *testing.T, data []byte) bool {
	t.Helper()
	switch {
	case bytes.HasPrefix(data, []byte("ARROW1\x00\x00")) && bytes.HasSuffix(data, []byte("ARROW1")):
		return true
	case bytes.HasPrefix(data, streamHead) && bytes.HasSuffix(data, streamTail):
		return false
	}
	t.Fatalf("neither an IPC file nor a stream: %q...%q", data[:8], data[len(data)-8:])
	return false
}

func TestCreateFormatByName(t *testing.T) {
	s := makeSample(12)
	rec := s.record(t)
	defer rec.Release()
	for _, c := range []struct {
		name   string
		format Format
		file   bool
	}{
		{"a.arrow", FormatAuto, true},
		{"a.feather", FormatAuto, true},
		{"A.ARROW", FormatAuto, true},
		{"a.arrows", FormatAuto, false},
		{"a.ipc", FormatAuto, false},
		{"a.arrow", FormatStream, false},
		{"a.arrows", FormatFile, true},
	} {
		path := filepath.Join(t.TempDir(), c.name)
		for _, comp := range []string{"", "zstd"} {
			w, err := Create(path, rec.Schema(), Options{Format: c.format, Compress: comp, BatchRows: 5})
			if err != nil {
				t.Fatal(err)
			}
			writeAll(t, w, rec)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := isFile(t, data); got != c.file {
				t.Errorf("%s (format %d, compress %q): file format %v, want %v", c.name, c.format, comp, got, c.file)
			}
			r, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{true: 3, false: -1}[c.file]; r.NumBatches() != want {
				t.Errorf("%s: NumBatches %d, want %d", c.name, r.NumBatches(), want)
			}
			if v, _ := r.Meta(MetaImageSize); v != "2" {
				t.Errorf("%s: metadata lost: image size %q", c.name, v)
			}
			got, sizes := readAll(t, r)
			r.Close()
			checkSame(t, got, s)
			if !slices.Equal(sizes, []int64{5, 5, 2}) {
				t.Errorf("%s: batch sizes %v", c.name, sizes)
			}
		}
	}
	// stdout and a plain writer keep the stream format unless told.
	var out bytes.Buffer
	w, _ := Create("-", rec.Schema(), Options{Stdout: &out})
	writeAll(t, w, rec)
	if isFile(t, out.Bytes()) {
		t.Error("stdout got an IPC file")
	}
	if !isFile(t, encode(t, rec, Options{Format: FormatFile})) || isFile(t, encode(t, rec, Options{})) {
		t.Error("NewWriter's formats")
	}
}

func writeFileBytes(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.arrow")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func ids(t *testing.T, rec arrow.RecordBatch) []string {
	t.Helper()
	v, err := Strings(rec, ColImageID)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestBatchAt(t *testing.T) {
	s := makeSample(12)
	rec := s.record(t)
	defer rec.Release()
	r, err := Open(writeFileBytes(t, encode(t, rec, Options{Format: FormatFile, BatchRows: 4})))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.NumBatches() != 3 {
		t.Fatalf("NumBatches %d", r.NumBatches())
	}
	// Concurrent readers, in any order, each get their batch.
	var wg sync.WaitGroup
	got := make([][]string, 3)
	for i := range 3 {
		wg.Go(func() {
			b, err := r.BatchAt(2 - i)
			if err != nil {
				t.Error(err)
				return
			}
			defer b.Release()
			got[2-i] = slices.Clone(ids(t, b))
		})
	}
	wg.Wait()
	for i := range 3 {
		if !slices.Equal(got[i], s.ids[4*i:4*i+4]) {
			t.Errorf("BatchAt(%d) ids %v, want %v", i, got[i], s.ids[4*i:4*i+4])
		}
	}
	// BatchAt leaves Next where it was.
	if !r.Next() || !slices.Equal(ids(t, r.Batch()), s.ids[:4]) || r.FirstRow() != 0 || r.BatchIndex() != 1 {
		t.Errorf("Next after BatchAt: %v", r.Err())
	}
	for _, i := range []int{-1, 3} {
		if _, err := r.BatchAt(i); err == nil || !strings.Contains(err.Error(), "out of range (the input has 3)") {
			t.Errorf("BatchAt(%d): %v", i, err)
		}
	}
	sr, err := NewReader(bytes.NewReader(encode(t, rec, Options{})), "stdin")
	if err != nil {
		t.Fatal(err)
	}
	defer sr.Close()
	if _, err := sr.BatchAt(0); err == nil || !strings.Contains(err.Error(), "stdin: cannot read batch 1 at random: the input is a stream or a pipe") {
		t.Errorf("BatchAt on a stream: %v", err)
	}
}

// An IPC file arriving through a pipe (or from a caller's reader) is read
// in order: the stream after the magic, then the footer is checked.
func TestFileThroughPipe(t *testing.T) {
	s := makeSample(12)
	rec := s.record(t)
	defer rec.Release()
	data := encode(t, rec, Options{Format: FormatFile, Compress: "lz4", BatchRows: 4})
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		pw.Write(data)
		pw.Close()
	}()
	old := os.Stdin
	defer func() { os.Stdin = old }()
	os.Stdin = pr
	r, err := Open("-")
	if err != nil {
		t.Fatal(err)
	}
	if r.NumBatches() != -1 {
		t.Errorf("NumBatches on a pipe: %d", r.NumBatches())
	}
	got, _ := readAll(t, r)
	r.Close()
	pr.Close()
	checkSame(t, got, s)

	// stdin redirected from a regular file is read through its footer.
	f, err := os.Open(writeFileBytes(t, data))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	os.Stdin = f
	r, err = Open("-")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.NumBatches() != 3 || r.Name() != "stdin" {
		t.Errorf("stdin from a file: %d batches, name %q", r.NumBatches(), r.Name())
	}
}

func TestTruncatedFile(t *testing.T) {
	rec := makeSample(12).record(t)
	defer rec.Release()
	data := encode(t, rec, Options{Format: FormatFile, BatchRows: 4})
	path := writeFileBytes(t, data)
	readPath := func() error {
		r, err := Open(path)
		if err != nil {
			return err
		}
		defer r.Close()
		for r.Next() {
		}
		return r.Err()
	}
	if err := readPath(); err != nil {
		t.Fatal(err)
	}
	// Every cut is an error, read in order (the stream or the footer is
	// short) and as a file (the footer is gone; there every 7th cut and all
	// near the ends, to keep the test fast).
	for cut := 1; cut < len(data); cut++ {
		if err := readErr(data[:cut]); err == nil || !strings.HasPrefix(err.Error(), "in.arrow: ") {
			t.Fatalf("file cut at %d of %d bytes, read in order: %v", cut, len(data), err)
		}
		if cut%7 != 0 && cut > 100 && cut < len(data)-100 {
			continue
		}
		if err := os.WriteFile(path, data[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		err := readPath()
		if err == nil || !strings.HasPrefix(err.Error(), path+": ") {
			t.Fatalf("file cut at %d of %d bytes: %v", cut, len(data), err)
		}
		if cut > 8 && !strings.Contains(err.Error(), "not a complete Arrow IPC file") {
			t.Fatalf("file cut at %d: %v", cut, err)
		}
	}
	// Cut right after the end-of-stream marker: the batches are all there,
	// the footer is not.
	footer := footerStart(data)
	err := readErr(data[:footer])
	if err == nil || !strings.Contains(err.Error(), "the IPC file ends without its footer") {
		t.Errorf("file without its footer, read in order: %v", err)
	}
	// Without the end-of-stream marker: a stage that failed writing to a pipe.
	if err := readErr(data[:footer-8]); !errors.Is(err, ErrTruncated) {
		t.Errorf("file cut before its end-of-stream marker, read in order: %v", err)
	}
}

// footerStart is where an IPC file's footer begins.
func footerStart(data []byte) int {
	n := len(data)
	return n - 10 - int(binary.LittleEndian.Uint32(data[n-10:]))
}

func TestDamagedFooter(t *testing.T) {
	small := makeSample(12).record(t)
	defer small.Release()
	big := makeSample(40).record(t)
	defer big.Release()
	data := encode(t, small, Options{Format: FormatFile, BatchRows: 4})
	other := encode(t, big, Options{Format: FormatFile, BatchRows: 4})
	meta := makeSample(12).record(t)
	defer meta.Release()
	otherSchema := encode(t, meta, Options{Format: FormatFile, BatchRows: 4})
	otherSchema = bytes.Replace(otherSchema, []byte(`"synthetic"`), []byte(`"synthetiq"`), -1) // the provenance, in both schemas
	readPath := func(data []byte) error {
		path := writeFileBytes(t, data)
		var errs []error
		for _, open := range []func(string) (*Reader, error){Open, OpenMapped} {
			r, err := open(path)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for r.Next() {
			}
			errs = append(errs, r.Err())
			r.Close()
		}
		if errs[0] == nil || errs[1] == nil || errs[0].Error() != errs[1].Error() {
			return fmt.Errorf("Open and OpenMapped: %v", errs)
		}
		return errs[0]
	}
	n := len(data)
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		// The size field claims more than the file holds.
		"size": {append(slices.Clone(data[:n-10]), 0xff, 0xff, 0, 0, 'A', 'R', 'R', 'O', 'W', '1'), "not a complete Arrow IPC file"},
		// The footer's bytes zeroed.
		"zeroed": {slices.Concat(data[:footerStart(data)], make([]byte, n-10-footerStart(data)), data[n-10:]), "not a complete Arrow IPC file"},
		// The footer of a bigger file: its batches 4 to 10 lie past the end.
		"other": {slices.Concat(data[:footerStart(data)], other[footerStart(other):]), "batch 4 (after row 12): "},
		// The footer of a file with another schema.
		"other schema": {slices.Concat(data[:footerStart(data)], otherSchema[footerStart(otherSchema):]), "the IPC file's footer does not match it"},
	} {
		if err := readPath(c.data); !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "in.arrow: ") {
			t.Errorf("%s: %v, want an error with %q naming the file", name, err, c.want)
		}
	}
}
