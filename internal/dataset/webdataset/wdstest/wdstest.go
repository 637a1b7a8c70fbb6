// Package wdstest builds miniature webdataset shards and image files for
// tests of the readers of shards (internal/dataset/webdataset, prepare).
package wdstest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Member is one tar entry of a test shard; Dir makes a directory entry.
type Member struct {
	Name string
	Data string
	Dir  bool
}

// WriteShard writes members as a tar file at path (gzip-compressed when gz)
// with Go's archive/tar.
func WriteShard(t testing.TB, path string, gz bool, members []Member) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		hdr := &tar.Header{Name: m.Name, Mode: 0o644, Size: int64(len(m.Data)), Typeflag: tar.TypeReg}
		if m.Dir {
			hdr = &tar.Header{Name: m.Name, Mode: 0o755, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(m.Data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	if gz {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(data)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		data = z.Bytes()
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Image returns a small real image file: "png" or "jpeg" (8x6, pixels
// from seed), or "webp" (a committed libwebp file from imageproc's test
// data).
func Image(t testing.TB, format string, seed uint8) string {
	t.Helper()
	if format == "webp" {
		_, file, _, _ := runtime.Caller(0) // .../internal/dataset/webdataset/wdstest/wdstest.go
		b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "..", "imageproc", "testdata", "blue-purple-pink.lossy.webp"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	m := image.NewRGBA(image.Rect(0, 0, 8, 6))
	for i := range m.Pix {
		m.Pix[i] = uint8(i) * seed
	}
	m.Set(0, 0, color.RGBA{seed, 0, 0, 255})
	var buf bytes.Buffer
	var err error
	if format == "png" {
		err = png.Encode(&buf, m)
	} else {
		err = jpeg.Encode(&buf, m, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.String()
}
