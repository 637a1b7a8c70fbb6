package tfevents

import (
	"bytes"
	"hash/crc32"
	"math"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/clipline/clipline/internal/tfevents/tbtest"
)

// TestCRC32C: the CRC-32C test vectors of RFC 3720 appendix B.4, which
// TFRecord's checksum uses.
func TestCRC32C(t *testing.T) {
	inc, dec := make([]byte, 32), make([]byte, 32)
	for i := range inc {
		inc[i], dec[i] = byte(i), byte(31-i)
	}
	for _, tc := range []struct {
		in   []byte
		want uint32
	}{
		{make([]byte, 32), 0x8a9136aa},
		{bytes.Repeat([]byte{0xff}, 32), 0x62a8ab43},
		{inc, 0x46dd794e},
		{dec, 0x113fdb5c},
	} {
		if got := crc32.Checksum(tc.in, castagnoli); got != tc.want {
			t.Errorf("crc32c(% x) = %#08x, want %#08x", tc.in[:4], got, tc.want)
		}
		c := tc.want
		if got, want := MaskedCRC(tc.in), (c>>15|c<<17)+0xa282ead8; got != want {
			t.Errorf("masked crc32c(% x) = %#08x, want %#08x", tc.in[:4], got, want)
		}
	}
}

// TestReadBack: a file written here parses with Python's protobuf runtime
// (tbtest), framing checksums and all, into the events written.
func TestReadBack(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "runs")
	t0 := time.Unix(1765000000, 250_000_000)
	w, err := Create(dir, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^events\.out\.tfevents\.1765000000\.[^/]+$`).MatchString(filepath.Base(w.Path())) {
		t.Errorf("file name %s", filepath.Base(w.Path()))
	}
	steps := []int64{10, 20, 1 << 40}
	for i, s := range steps {
		vals := []Scalar{{"loss", 1.5 / float64(i+1)}, {"learning_rate", 2e-5}, {"eval/t2i_r1", 0.125 * float64(i)}}
		if err := w.Scalars(s, t0.Add(time.Duration(i)*time.Second), vals); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	evs := tbtest.Read(t, w.Path())
	if len(evs) != 1+len(steps) {
		t.Fatalf("%d events, want %d: %+v", len(evs), 1+len(steps), evs)
	}
	if evs[0].FileVersion != FileVersion || evs[0].WallTime != 1765000000.25 || len(evs[0].Values) != 0 {
		t.Errorf("first event %+v", evs[0])
	}
	for i, s := range steps {
		e := evs[i+1]
		if e.Step != s || e.WallTime != 1765000000.25+float64(i) || len(e.Values) != 3 {
			t.Errorf("event %d: %+v", i+1, e)
		}
		for tag, want := range map[string]float64{"loss": 1.5 / float64(i+1), "learning_rate": 2e-5, "eval/t2i_r1": 0.125 * float64(i)} {
			got, ok := e.Value(tag)
			// simple_value is a float32.
			if !ok || !(math.Abs(got-want) <= 1e-7*math.Abs(want)) {
				t.Errorf("step %d %s = %v (%v), want %v", s, tag, got, ok, want)
			}
		}
	}
	// A second writer in the same second gets its own file rather than
	// appending to (or truncating) the first.
	w2, err := Create(dir, t0)
	if err != nil {
		t.Fatal(err)
	}
	w2.Close()
	if w2.Path() != w.Path()+".1" {
		t.Errorf("second file %s, want %s.1", w2.Path(), w.Path())
	}
	if evs := tbtest.Read(t, w.Path()); len(evs) != 1+len(steps) {
		t.Errorf("the first file has %d events after a second Create", len(evs))
	}
}
