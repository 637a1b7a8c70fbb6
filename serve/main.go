// Command serve answers text and image searches over index bundles over
// HTTP, with a web page at /.
//
//	serve --model DIR|ID --index DIR [--captions-index DIR] [--compare DIR] [--addr 127.0.0.1:8080] [--token T]
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kong"

	"github.com/clipline/clipline/clip"
	"github.com/clipline/clipline/internal/cli"
	"github.com/clipline/clipline/internal/device"
	"github.com/clipline/clipline/internal/hub"
	"github.com/clipline/clipline/internal/modelid"
	"github.com/clipline/clipline/internal/serve"
	"github.com/clipline/clipline/internal/serve/web"
)

const description = `Search index bundles over HTTP.

Serves the images bundle --index (index's output) with the model that made
it (--model; refused, naming both, when the bundle's manifest records
another model's hash), and the search page at http://ADDR/.

  POST /search/text?query=TEXT&top_k=K    tutorial-compatible (GET too)
  POST /search/image?top_k=K              multipart field "file" (GET too)
  POST /v1/search                         JSON: text, image (base64), image_id,
                                          weighted terms, top_k, offset, split,
                                          target (images or captions)
  GET  /v1/images/{image_id}[?w=N]        an indexed image, or a thumbnail
  GET  /v1/info, /healthz, /metrics       model and index; liveness; Prometheus
  POST /v1/admin/reload                   reopen the bundles (as SIGHUP does)

Results are {"results": [{"rank", "image_id", "score", "image_path",
"captions"}, ...]}, score the cosine similarity, highest first, ties in index
order: exactly rank's top K for the same caption over the same images. Bad
requests get a 4xx and {"error": "..."}.

--captions-index DIR adds a captions bundle (index --captions) for image to text
(target "captions"). --compare DIR adds an images bundle made with another
model (the base model: --compare-model, default the model its manifest
names), whose results come in the "compare" field, for zero-shot against
fine-tuned side by side.

Concurrent encodes are batched into one model call (--batch-window,
--max-batch); at most --queue wait per model, and more are answered 503.
SIGTERM or SIGINT stops accepting and lets requests in flight finish; SIGHUP
reopens the bundles and swaps them in atomically. It binds 127.0.0.1 by
default; --token (or CLIPLINE_TOKEN) makes every endpoint but / and
/healthz require "Authorization: Bearer TOKEN".`

type command struct {
	Model        string        `required:"" placeholder:"DIR|ID" help:"Checkpoint directory or Hugging Face model id that made --index."`
	Index        string        `required:"" placeholder:"DIR" type:"existingdir" help:"Images bundle (index --out DIR)."`
	Captions     string        `name:"captions-index" placeholder:"DIR" type:"existingdir" help:"Captions bundle (index --captions) for image to text search."`
	Compare      string        `placeholder:"DIR" type:"existingdir" help:"Images bundle made with another model, searched side by side."`
	CompareModel string        `placeholder:"DIR|ID" help:"The model of --compare (default: the one its manifest names)."`
	Addr         string        `default:"127.0.0.1:8080" placeholder:"HOST:PORT" help:"Address to listen on."`
	Token        string        `env:"CLIPLINE_TOKEN" placeholder:"TOKEN" help:"Require Authorization: Bearer TOKEN on the API."`
	MaxUpload    int64         `default:"20000000" placeholder:"N" help:"Largest uploaded image in bytes (413 above)."`
	MaxPixels    int64         `default:"50000000" placeholder:"N" help:"Most pixels (width times height) of an uploaded image, read from its header before decoding (413 above)."`
	Timeout      time.Duration `default:"30s" placeholder:"DURATION" help:"Per-request time limit (503 after it)."`
	Queue        int           `default:"64" placeholder:"N" help:"Encodes waiting per model; more are answered 503."`
	BatchWindow  time.Duration `default:"2ms" placeholder:"DURATION" help:"How long an encode waits for others to batch with."`
	MaxBatch     int           `default:"32" placeholder:"N" help:"Most texts or images per model call."`
	ImageRoot    string        `placeholder:"DIR" help:"Resolve relative image paths against DIR (default: decode's --image-root in the bundle's provenance, else the current directory)."`
	Device       string        `default:"cpu" placeholder:"NAME" help:"Compute device: ${device_syntax}."`
}

func main() { cli.Main("serve", run) }

func run(args []string, stdout, stderr io.Writer) error {
	var c command
	if ctx, err := cli.Parse("serve", description, &c, args, stdout, stderr,
		kong.Vars{"device_syntax": device.Syntax}); ctx == nil {
		return err
	}
	if c.CompareModel != "" && c.Compare == "" {
		return fmt.Errorf("--compare-model needs --compare")
	}
	if c.MaxBatch < 1 {
		return fmt.Errorf("--max-batch %d must be positive", c.MaxBatch)
	}
	m, err := c.load(c.Model, stderr)
	if err != nil {
		return err
	}
	defer m.Enc.(*clip.Model).Close()
	o := serve.Options{Index: c.Index, Captions: c.Captions, Compare: c.Compare, Model: m, ImageRoot: c.ImageRoot,
		Token: c.Token, MaxUpload: c.MaxUpload, MaxPixels: c.MaxPixels, Timeout: c.Timeout, Queue: c.Queue,
		BatchWindow: c.BatchWindow, MaxBatch: c.MaxBatch, ThumbCache: 64 << 20, Web: web.FS,
		Version: "serve clipline " + cli.Version(), Log: stderr}
	if c.Compare != "" {
		src := c.CompareModel
		if src == "" {
			bm, err := serve.BundleModel(c.Compare)
			if err != nil {
				return fmt.Errorf("--compare %s: %w (give --compare-model)", c.Compare, err)
			}
			src = bm.Source
		}
		if o.CompareModel, err = c.load(src, stderr); err != nil {
			return fmt.Errorf("--compare %s: %w", c.Compare, err)
		}
		defer o.CompareModel.Enc.(*clip.Model).Close()
	}
	s, err := serve.New(o)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		s.Close()
		return err
	}
	fmt.Fprintf(stderr, "serve: http://%s/ (index %s, model %s)\n", ln.Addr(), c.Index, c.Model)

	ctx, stop := cli.CatchInterrupt(context.Background(), "finishing the requests in flight")
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			s.Reload() // logs its result
		}
	}()
	err = s.Serve(ctx, ln, c.Timeout+5*time.Second)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err == nil && ctx.Err() != nil {
		fmt.Fprintln(stderr, "serve: stopped")
	}
	return err
}

// load resolves a --model argument and loads it, batching up to
// --max-batch texts in one encoder call.
func (c *command) load(arg string, stderr io.Writer) (serve.Model, error) {
	dir, err := hub.Model(arg, stderr)
	if err != nil {
		return serve.Model{}, err
	}
	hash, err := modelid.Hash(dir)
	if err != nil {
		return serve.Model{}, err
	}
	m, err := clip.Load(dir, clip.WithDevice(c.Device), clip.WithBatchSize(c.MaxBatch))
	if err != nil {
		return serve.Model{}, err
	}
	return serve.Model{Enc: m, Hash: hash, Source: arg}, nil
}
