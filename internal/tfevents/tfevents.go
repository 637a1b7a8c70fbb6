// Package tfevents writes TensorBoard event files: TFRecord framing around
// tensorflow.Event messages holding scalar summaries, the files
// `tensorboard --logdir` reads.
//
// The messages are encoded with google.golang.org/protobuf's protowire by the
// field numbers of tensorflow/core/util/event.proto and
// tensorflow/core/framework/summary.proto: three messages and five fields do
// not justify generated code and a protoc step in the build.
package tfevents

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of tensorflow.Event, Summary and Summary.Value.
const (
	eventWallTime    = 1 // double
	eventStep        = 2 // int64
	eventFileVersion = 3 // string
	eventSummary     = 5 // Summary
	summaryValue     = 1 // repeated Value
	valueTag         = 1 // string
	valueSimpleValue = 2 // float
)

// FileVersion is the first event of every file, as TensorFlow writes it.
const FileVersion = "brain.Event:2"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MaskedCRC is TFRecord's masked CRC-32C of b.
func MaskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// Scalar is one tagged value of a summary.
type Scalar struct {
	Tag   string
	Value float64
}

// Writer appends events to one file.
type Writer struct {
	f    *os.File
	path string
}

// Create makes dir and a new event file in it named as TensorFlow names
// them (events.out.tfevents.UNIXTIME.HOSTNAME), and writes the file
// version event. TensorBoard reads every such file in a directory as one
// run, in name order.
func Create(dir string, now time.Time) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tfevents: %w", err)
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	// A run resumed within the second its previous process started gets
	// a suffix, as tensorboardX's filename_suffix, rather than appending
	// to (or truncating) the earlier file.
	base := filepath.Join(dir, fmt.Sprintf("events.out.tfevents.%d.%s", now.Unix(), host))
	p := base
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	for i := 1; errors.Is(err, fs.ErrExist) && i < 100; i++ {
		p = fmt.Sprintf("%s.%d", base, i)
		f, err = os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	}
	if err != nil {
		return nil, fmt.Errorf("tfevents: %w", err)
	}
	w := &Writer{f: f, path: p}
	ev := protowire.AppendTag(nil, eventWallTime, protowire.Fixed64Type)
	ev = protowire.AppendFixed64(ev, math.Float64bits(wallTime(now)))
	ev = protowire.AppendTag(ev, eventFileVersion, protowire.BytesType)
	ev = protowire.AppendString(ev, FileVersion)
	if err := w.record(ev); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// Path is the event file's path.
func (w *Writer) Path() string { return w.path }

// Scalars writes one event at step holding the values; TensorBoard stores
// them as 32-bit floats (simple_value).
func (w *Writer) Scalars(step int64, now time.Time, vals []Scalar) error {
	var sum []byte
	for _, v := range vals {
		var val []byte
		val = protowire.AppendTag(val, valueTag, protowire.BytesType)
		val = protowire.AppendString(val, v.Tag)
		val = protowire.AppendTag(val, valueSimpleValue, protowire.Fixed32Type)
		val = protowire.AppendFixed32(val, math.Float32bits(float32(v.Value)))
		sum = protowire.AppendTag(sum, summaryValue, protowire.BytesType)
		sum = protowire.AppendBytes(sum, val)
	}
	ev := protowire.AppendTag(nil, eventWallTime, protowire.Fixed64Type)
	ev = protowire.AppendFixed64(ev, math.Float64bits(wallTime(now)))
	ev = protowire.AppendTag(ev, eventStep, protowire.VarintType)
	ev = protowire.AppendVarint(ev, uint64(step))
	ev = protowire.AppendTag(ev, eventSummary, protowire.BytesType)
	ev = protowire.AppendBytes(ev, sum)
	return w.record(ev)
}

// record writes data in TFRecord framing: length, its masked CRC, data,
// its masked CRC, in one write so a reader never sees half a header.
func (w *Writer) record(data []byte) error {
	b := make([]byte, 12, 16+len(data))
	binary.LittleEndian.PutUint64(b, uint64(len(data)))
	binary.LittleEndian.PutUint32(b[8:], MaskedCRC(b[:8]))
	b = append(b, data...)
	b = binary.LittleEndian.AppendUint32(b, MaskedCRC(data))
	if _, err := w.f.Write(b); err != nil {
		return fmt.Errorf("tfevents: %s: %w", w.path, err)
	}
	return nil
}

// Close closes the file.
func (w *Writer) Close() error {
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("tfevents: %s: %w", w.path, err)
	}
	return nil
}

// wallTime is t in seconds since 1970, as Python's time.time() gives it
// (seconds and fraction added, so whole and half seconds stay exact).
func wallTime(t time.Time) float64 { return float64(t.Unix()) + float64(t.Nanosecond())/1e9 }
