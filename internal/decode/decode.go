// Package decode is the decode stage's work: the pixels column of a stream,
// each row's image_path decoded and resized on all cores by imageproc.Pool,
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

// Run writes in with pixels added: each row's image as HWC RGB at the
// geometry's crop, rows in order. An image that cannot be read or decoded
// fails the stage with the row (and image_id) named, or with SkipBad drops
// its row.
func Run(in *stream.Reader, o Options) error {
	g := o.Geometry
	pool, err := imageproc.NewPool(g, o.Workers)
	if err != nil {
		return err
	}
	if err := in.Require(stream.ColImagePath); err != nil {
		return err
	}
	hasID := stream.HasColumn(in.Schema(), stream.ColImageID)
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
			paths, err := stream.Strings(rec, stream.ColImagePath)
			if err != nil {
				return nil, nil, err
			}
			var ids []string
			if hasID {
				if ids, err = stream.Strings(rec, stream.ColImageID); err != nil {
					return nil, nil, err
				}
			}
			for i, p := range paths {
				paths[i] = Resolve(o.ImageRoot, p)
			}
			// A fresh buffer per batch: the column wraps it without copying
			// and the writer may hold it after this batch.
			pix := make([]byte, len(paths)*pool.OutLen())
			errs := pool.Files(pix, paths)
			var keep []bool
			for i, e := range errs {
				if e == nil {
					continue
				}
				where := fmt.Sprintf("row %d", firstRow+int64(i))
				if ids != nil {
					where += fmt.Sprintf(" (image_id %s)", ids[i])
				}
				if !o.SkipBad {
					return nil, nil, fmt.Errorf("%s: %w (--skip-bad drops such rows)", where, e)
				}
				if keep == nil {
					keep = make([]bool, len(paths))
					for j := range keep {
						keep[j] = true
					}
				}
				keep[i] = false
				prog.skipped(where, e)
			}
			prog.add(len(paths))
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

func (p *progress) skipped(where string, err error) {
	p.nskipped++
	switch {
	case p.nskipped <= maxSkipLines:
		fmt.Fprintf(p.w, "decode: skipping %s: %v\n", where, err)
	case p.nskipped == maxSkipLines+1:
		fmt.Fprintf(p.w, "decode: skipping more unreadable images (counted at the end)\n")
	}
}
