// Command decode adds the pixels column to a clipline stream: each row's
// image_path decoded, converted to RGB, resized and center-cropped exactly as
// Hugging Face's CLIPImageProcessor does with Pillow.
//
//	decode (--model DIR | --size N) [--image-root DIR] [--skip-bad] [--in FILE] [--out FILE]
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/clipline/clipline/internal/cli"
	"github.com/clipline/clipline/internal/imageproc"
	"github.com/clipline/clipline/internal/stream"
)

const description = `Decode images into a pixels column.

Reads an Arrow IPC stream (stdin by default) whose rows have an image_path
column, and writes it (stdout by default) with pixels added:
fixed_size_list<uint8>[N*N*3], the image as HWC RGB. Each image (JPEG, PNG,
GIF, WebP or BMP) is converted to RGB as Pillow's convert("RGB") does, resized
with Pillow's bicubic filter so its shorter side is N (the longer side
floored; antialiased when shrinking), and center-cropped to N x N with
top=(h-N)/2 and left=(w-N)/2 rounded down.

The geometry comes from --model DIR (its preprocessor_config.json: size,
crop_size; without that file, config.json's vision_config.image_size with
CLIP's defaults) or from --size N. Absolute image paths are read as they
are; relative ones are resolved against --image-root when given, otherwise
against the current directory (prepare writes absolute paths).

Images are decoded on all cores; row order is kept. An image that cannot be
read or decoded stops the stage with an error naming the row, image_id and
file, and no output is completed; with --skip-bad such rows are dropped and
counted on stderr instead. Other columns pass through unchanged; the schema
metadata gains clipline.image_size (and clipline.model) and a provenance
entry.`

type command struct {
	Model     string `xor:"geometry" type:"existingdir" placeholder:"DIR" help:"Model directory whose preprocessor_config.json gives the size."`
	Size      int    `xor:"geometry" placeholder:"N" help:"Output side in pixels (resize shortest side to N, crop N x N)."`
	ImageRoot string `placeholder:"DIR" help:"Directory that relative image paths are resolved against (default: the current directory)."`
	SkipBad   bool   `help:"Drop rows whose image cannot be read or decoded (counted on stderr) instead of failing."`
	In        string `default:"-" placeholder:"FILE" help:"Input stream (- is stdin)."`
	Out       string `default:"-" placeholder:"FILE" help:"Output stream (- is stdout); a file appears only when complete."`
	Compress  string `default:"none" enum:"none,zstd,lz4" help:"Compress the output buffers (none, zstd, lz4); readers detect it."`
	Workers   int    `default:"0" help:"Goroutines decoding images (0: all cores)."`
}

func main() { cli.Main("decode", run) }

// run parses args and runs the stage; logs go to stderr.
func run(args []string, stdout, stderr io.Writer) error {
	var c command
	if ctx, err := cli.Parse("decode", description, &c, args, stdout, stderr); ctx == nil {
		return err
	}
	return c.run(args, stderr)
}

func (c *command) run(args []string, stderr io.Writer) error {
	g, err := c.geometry()
	if err != nil {
		return err
	}
	pool, err := imageproc.NewPool(g, c.Workers)
	if err != nil {
		return err
	}
	in, err := stream.Open(c.In)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := in.Require(stream.ColImagePath); err != nil {
		return err
	}
	hasID := stream.HasColumn(in.Schema(), stream.ColImageID)

	meta := map[string]string{stream.MetaImageSize: strconv.Itoa(g.CropW)}
	if c.Model != "" {
		meta[stream.MetaModel] = c.Model
	}
	prog := progress{w: stderr, start: time.Now(), last: time.Now()}
	spec := stream.TransformSpec{
		Stage:   "decode",
		Args:    args,
		Out:     c.Out,
		Options: stream.Options{Compress: c.Compress},
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
				paths[i] = c.resolve(p)
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
				if !c.SkipBad {
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
	fmt.Fprintf(stderr, "decode: %d rows in, %d out at %dx%d in %.2fs (%.0f images/s)",
		st.RowsIn, st.RowsOut, g.CropW, g.CropH, secs, float64(st.RowsIn)/max(secs, 1e-9))
	if c.SkipBad {
		fmt.Fprintf(stderr, "; %d rows dropped: unreadable images", st.Dropped)
	}
	fmt.Fprintln(stderr)
	return nil
}

// geometry is the resize and crop from --size or --model.
func (c *command) geometry() (imageproc.Geometry, error) {
	var g imageproc.Geometry
	switch {
	case c.Size > 0:
		g = imageproc.Square(c.Size)
	case c.Size < 0:
		return g, fmt.Errorf("--size %d must be positive", c.Size)
	case c.Model != "":
		cfg, err := modelConfig(c.Model)
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

// modelConfig reads DIR/preprocessor_config.json, or falls back to CLIP's
// preprocessing at config.json's vision_config.image_size.
func modelConfig(dir string) (imageproc.Config, error) {
	pre := filepath.Join(dir, imageproc.ConfigFile)
	if _, err := os.Stat(pre); err == nil {
		return imageproc.LoadConfig(pre)
	}
	path := filepath.Join(dir, "config.json")
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return imageproc.Config{}, fmt.Errorf("--model %s: neither %s nor config.json found", dir, imageproc.ConfigFile)
	}
	if err != nil {
		return imageproc.Config{}, err
	}
	var cfg struct {
		VisionConfig struct {
			ImageSize int `json:"image_size"`
		} `json:"vision_config"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return imageproc.Config{}, fmt.Errorf("%s: %w", path, err)
	}
	if cfg.VisionConfig.ImageSize <= 0 {
		return imageproc.Config{}, fmt.Errorf("%s: no vision_config.image_size (and no %s)", path, imageproc.ConfigFile)
	}
	return imageproc.DefaultConfig(cfg.VisionConfig.ImageSize), nil
}

// resolve applies --image-root to relative paths.
func (c *command) resolve(p string) string {
	if c.ImageRoot == "" || p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.ImageRoot, p)
}

// progress reports throughput on stderr every few seconds, and skipped
// images (the first few individually).
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
