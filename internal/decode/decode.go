// Package decode is the decode stage's work: the pixels column of a stream,
// each row's image_bytes or image_path decoded and resized on all cores by imageproc.Pool,
// with progress and skipped images reported on a log.
package decode

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/clipline/clipline/internal/imageproc"
	"github.com/clipline/clipline/internal/model"
	"github.com/clipline/clipline/internal/stream"
)

// Geometry is the resize and crop of --size n (when n is not 0) or of the
// model directory dir: imageproc.ForModel at its config.json's image size
// (a directory without config.json needs a preprocessor_config.json). The
// crop must be square, since the pixels column holds square images.
func Geometry(dir string, n int) (imageproc.Geometry, error) {
	var g imageproc.Geometry
	switch {
	case n > 0:
		g = imageproc.Square(n)
	case n < 0:
		return g, fmt.Errorf("--size %d must be positive", n)
	case dir != "":
		side := 0
		mc, err := model.LoadConfig(filepath.Join(dir, "config.json"))
		if err == nil {
			side = mc.Vision.ImageSize
		} else if !errors.Is(err, fs.ErrNotExist) {
			return g, err
		}
		cfg, err := imageproc.ForModel(dir, side)
		if err != nil {
			return g, err
		}
		g = cfg.Geometry
	default:
		return g, fmt.Errorf("give --model DIR or --size N")
	}
	if g.CropW != g.CropH {
		return g, fmt.Errorf("crop %dx%d is not square; the pixels column holds square images", g.CropW, g.CropH)
	}
	return g, g.Validate()
}

// Options configure Run.
type Options struct {
	Geometry  imageproc.Geometry // square crop (see Geometry)
	Model     string             // recorded as clipline.model when set
	ImageRoot string             // relative image paths resolve against it ("": the working directory)
	SkipBad   bool               // drop rows whose image fails (counted) instead of failing
	Workers   int                // goroutines decoding (0: all cores)
	Args      []string           // recorded in provenance
	Out       string             // output path; "" or "-" is Stdout
	Stdout    io.Writer          // the stage's stdout
	Compress  string             // "", "none", "zstd" or "lz4"
	Log       io.Writer          // progress, skipped images and the summary line; nil for silence
}

// Run writes in with pixels added: each row's image (image_bytes when the
// stream has that column, else the file image_path names) as HWC RGB at
// the geometry's crop, rows in order. An image that cannot be read or
// decoded fails the stage with the row (and image_id) named, or with
// SkipBad drops its row.
func Run(in *stream.Reader, o Options) error {
	g := o.Geometry
	pool, err := imageproc.NewPool(g, o.Workers)
	if err != nil {
		return err
	}
	src, err := NewSource(in.Schema(), o.ImageRoot, pool)
	if err != nil {
		return in.Errorf("%w", err)
	}
	if o.Log == nil {
		o.Log = io.Discard
	}

	meta := map[string]string{stream.MetaImageSize: strconv.Itoa(g.CropW)}
	if o.Model != "" {
		meta[stream.MetaModel] = o.Model
	}
	prog := progress{w: o.Log, start: time.Now(), last: time.Now()}
	spec := stream.TransformSpec{
		Stage:   "decode",
		Args:    o.Args,
		Out:     o.Out,
		Options: stream.Options{Compress: o.Compress, Stdout: o.Stdout},
		Fields:  []arrow.Field{stream.PixelsField(g.CropW)},
		Meta:    meta,
		Fn: func(rec arrow.RecordBatch, firstRow int64) ([]arrow.Array, []bool, error) {
			// A fresh buffer per batch: the column wraps it without copying
			// and the writer may hold it after this batch.
			n := int(rec.NumRows())
			pix := make([]byte, n*pool.OutLen())
			errs, err := src.Decode(pix, rec, firstRow)
			if err != nil {
				return nil, nil, err
			}
			var keep []bool
			for i, e := range errs {
				if e == nil {
					continue
				}
				if !o.SkipBad {
					return nil, nil, fmt.Errorf("%w (--skip-bad drops such rows)", e)
				}
				if keep == nil {
					keep = make([]bool, n)
					for j := range keep {
						keep[j] = true
					}
				}
				keep[i] = false
				prog.skipped(e)
			}
			prog.add(n)
			col := stream.NewPixels(stream.PixelRows{Width: pool.OutLen(), Values: pix})
			return []arrow.Array{col}, keep, nil
		},
	}
	st, err := stream.Transform(in, spec)
	if err != nil {
		return err
	}
	secs := time.Since(prog.start).Seconds()
	fmt.Fprintf(o.Log, "decode: %d rows in, %d out at %dx%d in %.2fs (%.0f images/s)",
		st.RowsIn, st.RowsOut, g.CropW, g.CropH, secs, float64(st.RowsIn)/max(secs, 1e-9))
	if o.SkipBad {
		fmt.Fprintf(o.Log, "; %d rows dropped: unreadable images", st.Dropped)
	}
	fmt.Fprintln(o.Log)
	return nil
}

// Source is where a stream's images are: the image_bytes column when the
// schema has it (it wins over image_path, so a self-contained stream never
// reads stale files), else the files image_path names. Embed decodes
// through it too, so its pixels are decode's bit for bit.
type Source struct {
	bytes bool // read image_bytes (else image_path)
	hasID bool
	root  string
	pool  *imageproc.Pool
}

// NewSource checks schema for an image column and returns the Source
// decoding it on pool, relative image paths resolved against root.
func NewSource(schema *arrow.Schema, root string, pool *imageproc.Pool) (*Source, error) {
	s := &Source{bytes: stream.HasColumn(schema, stream.ColImageBytes), hasID: stream.HasColumn(schema, stream.ColImageID), root: root, pool: pool}
	col := stream.ColImagePath
	if s.bytes {
		col = stream.ColImageBytes
	} else if !stream.HasColumn(schema, col) {
		return nil, fmt.Errorf("neither %s nor %s to decode; prepare writes them", stream.ColImageBytes, stream.ColImagePath)
	}
	if err := stream.RequireColumns(schema, col); err != nil {
		return nil, err
	}
	return s, nil
}

// Column is the column the images are read from.
func (s *Source) Column() string {
	if s.bytes {
		return stream.ColImageBytes
	}
	return stream.ColImagePath
}

// Decode decodes rec's images into dst (rows*OutLen bytes, HWC RGB). The
// per-row errors (nil where the image decoded; its slot is then zeroed)
// name the stream row, its image_id and the file or column; err is a
// column that cannot be read.
func (s *Source) Decode(dst []byte, rec arrow.RecordBatch, firstRow int64) (errs []error, err error) {
	var ids []string
	if s.hasID {
		if ids, err = stream.Strings(rec, stream.ColImageID); err != nil {
			return nil, err
		}
	}
	if s.bytes {
		data, err := stream.Binaries(rec, stream.ColImageBytes)
		if err != nil {
			return nil, err
		}
		errs = s.pool.Bytes(dst, data, func(int) string { return stream.ColImageBytes })
	} else {
		paths, err := stream.Strings(rec, stream.ColImagePath)
		if err != nil {
			return nil, err
		}
		for i, p := range paths {
			paths[i] = Resolve(s.root, p)
		}
		errs = s.pool.Files(dst, paths)
	}
	for i, e := range errs {
		if e == nil {
			continue
		}
		where := fmt.Sprintf("row %d", firstRow+int64(i))
		if ids != nil {
			where += fmt.Sprintf(" (image_id %s)", ids[i])
		}
		errs[i] = fmt.Errorf("%s: %w", where, e)
	}
	return errs, nil
}

// Resolve is the path decode reads for image_path p under --image-root
// root: p itself when absolute (or root is empty), else root/p.
func Resolve(root, p string) string {
	if root == "" || p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}

// progress reports throughput every few seconds, and skipped images (the
// first few individually).
type progress struct {
	w           io.Writer
	start, last time.Time
	done        int64
	nskipped    int
}

const maxSkipLines = 10

func (p *progress) add(n int) {
	p.done += int64(n)
	if now := time.Now(); now.Sub(p.last) >= 5*time.Second {
		p.last = now
		fmt.Fprintf(p.w, "decode: %d images, %.0f images/s\n", p.done, float64(p.done)/now.Sub(p.start).Seconds())
	}
}

func (p *progress) skipped(err error) {
	p.nskipped++
	switch {
	case p.nskipped <= maxSkipLines:
		fmt.Fprintf(p.w, "decode: skipping %v\n", err)
	case p.nskipped == maxSkipLines+1:
		fmt.Fprintf(p.w, "decode: skipping more unreadable images (counted at the end)\n")
	}
}
