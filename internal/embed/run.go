package embed

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/decode"
	"github.com/clipline/clipline/internal/imageproc"
	"github.com/clipline/clipline/internal/modelid"
	"github.com/clipline/clipline/internal/stream"
)

// RunOptions configure Run.
type RunOptions struct {
	Out      string    // output path; "" or "-" is Stdout
	Stdout   io.Writer // the stage's stdout
	Args     []string  // recorded in provenance
	Model    string    // recorded as clipline.model (the --model argument)
	Compress string    // "", "none", "zstd" or "lz4"
	// Split, when set, keeps only the rows whose split column is Split;
	// the others are dropped (counted in Stats.Dropped).
	Split string
	// ImageRoot resolves relative image_path values when Run decodes the
	// images itself ("": the working directory).
	ImageRoot string
	// Progress receives a throughput line every ProgressEvery (default 5 s);
	// nil for silence.
	Progress      io.Writer
	ProgressEvery time.Duration
}

// Stats count what Run did.
type Stats struct {
	Rows, Images, Captions int64 // rows written, images and captions embedded
	Dropped                int64 // rows of other splits (RunOptions.Split)
	Elapsed                time.Duration
}

// Inputs are the columns of a stream that Run embeds.
type Inputs struct {
	Pixels, Tokens bool // images (from pixels, or decoded: Decode), captions
	// Decode: the stream has no pixels but image_bytes or image_path, which
	// Run decodes with the model's preprocessing (decode.Source, so the
	// pixels are the decode stage's).
	Decode  bool
	Side    int // pixels: image side
	Context int // caption_tokens: ids per caption
}

// Check validates a stream's schema against the model: which of pixels (or
// image_bytes or image_path to decode) and caption_tokens it has (at least
// one), the image size (from the pixels type and clipline.image_size, or the
// model's preprocessing) and the context length. Errors name the input and
// say which stage to rerun.
func (e *Embedder) Check(in *stream.Reader) (Inputs, error) {
	var ins Inputs
	schema := in.Schema()
	ins.Pixels = stream.HasColumn(schema, stream.ColPixels)
	ins.Tokens = stream.HasColumn(schema, stream.ColCaptionTokens)
	ins.Decode = !ins.Pixels && (stream.HasColumn(schema, stream.ColImageBytes) || stream.HasColumn(schema, stream.ColImagePath))
	if !ins.Pixels && !ins.Decode && !ins.Tokens {
		return ins, in.Errorf("nothing to embed: no %s, %s or %s (images) and no %s (captions; run tokenize first)",
			stream.ColPixels, stream.ColImageBytes, stream.ColImagePath, stream.ColCaptionTokens)
	}
	if ins.Decode {
		g := e.pre.Geometry
		if S := e.ImageSize(); g.CropW != S || g.CropH != S {
			return ins, in.Errorf("the model's preprocessing crops %dx%d but it expects %dx%d images; decode with --size %d first", g.CropW, g.CropH, S, S, S)
		}
		ins.Pixels, ins.Side = true, g.CropW
	} else if ins.Pixels {
		if err := in.Require(stream.ColPixels); err != nil {
			return ins, err
		}
		f, _ := schema.FieldsByName(stream.ColPixels)
		width := int(f[0].Type.(*arrow.FixedSizeListType).Len())
		side := int(math.Round(math.Sqrt(float64(width / 3))))
		if side*side*3 != width {
			return ins, in.Errorf("%s has %d values per row, not the 3*S*S of a square RGB image", stream.ColPixels, width)
		}
		if v, ok, err := stream.MetaInt(schema, stream.MetaImageSize); err != nil {
			return ins, in.Errorf("%w", err)
		} else if ok && v != side {
			return ins, in.Errorf("%s says %d but the %s column holds %dx%d images", stream.MetaImageSize, v, stream.ColPixels, side, side)
		}
		if S := e.ImageSize(); side != S {
			return ins, in.Errorf("pixels are %dx%d but the model expects %dx%d; decode with --model DIR (the model's directory)", side, side, S, S)
		}
		ins.Side = side
	}
	if ins.Tokens {
		if err := in.Require(stream.ColCaptionTokens); err != nil {
			return ins, err
		}
		f, _ := schema.FieldsByName(stream.ColCaptionTokens)
		ctx := int(f[0].Type.(*arrow.ListType).Elem().(*arrow.FixedSizeListType).Len())
		if v, ok, err := stream.MetaInt(schema, stream.MetaContextLength); err != nil {
			return ins, in.Errorf("%w", err)
		} else if ok && v != ctx {
			return ins, in.Errorf("%s says %d but %s rows hold %d ids", stream.MetaContextLength, v, stream.ColCaptionTokens, ctx)
		}
		// A shorter context is fine (captions were truncated earlier, and
		// attention is causal); a longer one has no position embeddings.
		if L := e.ContextLength(); ctx > L {
			return ins, in.Errorf("caption_tokens have context length %d but the model's is %d (max_position_embeddings); tokenize with --context %d", ctx, L, L)
		}
		if ctx < 2 {
			return ins, in.Errorf("caption_tokens have context length %d; need at least 2 (start and end tokens)", ctx)
		}
		ins.Context = ctx
	}
	return ins, nil
}

// Run embeds every row of in and writes the stream with image_embedding
// (when in has pixels, or images it decodes: Inputs.Decode) and
// caption_embeddings (when it has caption_tokens) set, every other column
// passed through, clipline.embedding_dim,
// clipline.model and clipline.model_hash set and a provenance entry appended. The output is written
// atomically: on any error it is aborted.
//
// Work is pipelined: one goroutine reads batches and prepares inputs
// (image bytes, token rows) while the calling goroutine runs the model
// and another writes finished rows, so reading, preprocessing and writing
// overlap with compute. Images and captions are packed into full batches
// across rows and record batches; a row is written once all its embeddings are.
func (e *Embedder) Run(in *stream.Reader, o RunOptions) (Stats, error) {
	start := time.Now()
	ins, err := e.Check(in)
	if err != nil {
		return Stats{}, err
	}
	if o.Split != "" {
		if err := in.Require(stream.ColSplit); err != nil {
			return Stats{}, fmt.Errorf("--split %s: %w", o.Split, err)
		}
	}
	spec := stream.TransformSpec{
		Stage: "embed",
		Args:  o.Args,
		Meta:  map[string]string{stream.MetaEmbeddingDim: strconv.Itoa(e.dim)},
	}
	if o.Model != "" {
		spec.Meta[stream.MetaModel] = o.Model
	}
	// The model by content, for index and serve to check; a model wrapped
	// by New has no files to hash.
	if e.dir != "" {
		h, err := modelid.Hash(e.dir)
		if err != nil {
			return Stats{}, err
		}
		spec.Meta[stream.MetaModelHash] = h
	}
	if ins.Pixels {
		spec.Fields = append(spec.Fields, stream.ImageEmbeddingField(e.dim))
	}
	if ins.Tokens {
		spec.Fields = append(spec.Fields, stream.CaptionEmbeddingsField(e.dim))
	}
	w, err := stream.Create(o.Out, spec.OutputSchema(in.Schema()), stream.Options{Compress: o.Compress, Stdout: o.Stdout})
	if err != nil {
		return Stats{}, err
	}
	defer w.Abort()

	r := &runner{e: e, in: in, ins: ins, fields: spec.Fields, w: w, split: o.Split}
	if ins.Decode {
		if r.images, err = e.imageSource(in, o.ImageRoot); err != nil {
			return Stats{}, err
		}
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	defer r.cancel()
	r.prog = progress{w: o.Progress, every: o.ProgressEvery, start: start, last: start}
	if r.prog.every <= 0 {
		r.prog.every = 5 * time.Second
	}
	B := e.opts.BatchSize
	// Two buffers of each kind: one being filled while the other computes.
	r.freePix = make(chan []uint8, 2)
	r.freeIDs = make(chan []int32, 2)
	// Image buffers are page-locked where the backend offers it, so their
	// upload is a DMA the compute goroutine does not wait for.
	var pinned [][]uint8
	defer func() {
		for _, b := range pinned {
			backend.FreeHostBytes(e.be, b)
		}
	}()
	for range 2 {
		if ins.Pixels {
			b := backend.HostBytes(e.be, B*ins.Side*ins.Side*3)
			pinned = append(pinned, b)
			r.freePix <- b
		}
		if ins.Tokens {
			r.freeIDs <- make([]int32, B*ins.Context)
		}
	}

	jobs := make(chan job, 2)
	done := make(chan *pending, 4)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); defer close(jobs); r.prepare(jobs) }()
	go func() { defer wg.Done(); r.write(done) }()
	r.compute(jobs, done)
	close(done)
	wg.Wait()
	st := Stats{Rows: r.rows, Images: r.prog.images, Captions: r.prog.captions, Dropped: in.RowsRead() - r.rows}
	if r.err != nil {
		return st, r.err
	}
	if err := w.Close(); err != nil {
		return st, err
	}
	st.Elapsed = time.Since(start)
	return st, nil
}

// pending is a row batch on its way through: retained until written.
type pending struct {
	rec      arrow.RecordBatch
	first    int64 // stream row of rec's first row
	pix      stream.PixelRows
	tok      stream.Tokens
	img      []float32 // [rows, dim] image embeddings
	caps     []float32 // [captions, dim] caption embeddings
	nimg     int       // images to embed (0 without pixels)
	ncap     int       // captions to embed (0 without tokens)
	imgDone  int       // set by compute only
	capDone  int
	imgTaken int // set by prepare only
	capTaken int
}

func (p *pending) complete() bool { return p.imgDone == p.nimg && p.capDone == p.ncap }

// span is items [at, at+n) of p within a batch.
type span struct {
	p     *pending
	at, n int
}

// job is one message from prepare to compute, in stream order: a new row
// batch entering the queue, or a batch of images or captions to embed.
type job struct {
	enter *pending
	image bool
	n     int
	pix   []uint8 // [n, S, S, 3] as decoded
	ids   []int32 // [n, context]
	spans []span
}

type runner struct {
	e      *Embedder
	in     *stream.Reader
	ins    Inputs
	fields []arrow.Field
	w      *stream.Writer

	ctx     context.Context
	cancel  context.CancelFunc
	errOnce sync.Once
	err     error

	split  string         // keep only rows of this split ("" keeps all)
	images *decode.Source // decodes the pixels when ins.Decode

	freePix chan []uint8
	freeIDs chan []int32
	prog    progress
	rows    int64 // rows written
}

// fail records the first error and stops every stage.
func (r *runner) fail(err error) {
	r.errOnce.Do(func() { r.err = err; r.cancel() })
}

func (r *runner) send(jobs chan<- job, j job) bool {
	select {
	case jobs <- j:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// prepare reads the input, queues each batch and sends full batches of
// images and captions (partial ones only at the end).
func (r *runner) prepare(jobs chan<- job) {
	B := r.e.opts.BatchSize
	var queue []*pending // batches with items not yet taken
	var imgAvail, capAvail int
	for r.in.Next() {
		if r.ctx.Err() != nil {
			return
		}
		pieces, err := r.pieces(r.in.Batch())
		if err != nil {
			r.fail(err)
			return
		}
		for k, rec := range pieces {
			p, err := r.newPending(rec.rec, rec.first)
			if err == nil && !r.send(jobs, job{enter: p}) {
				err = r.ctx.Err()
			}
			if err != nil {
				r.fail(err)
				for _, q := range pieces[k:] {
					q.rec.Release()
				}
				return
			}
			queue = append(queue, p)
			imgAvail += p.nimg
			capAvail += p.ncap
			for imgAvail >= B || capAvail >= B {
				// Images first: a row is written once both kinds are done, so
				// alternating keeps the oldest rows moving.
				if imgAvail >= B {
					if !r.sendBatch(jobs, queue, true, B) {
						return
					}
					imgAvail -= B
				}
				if capAvail >= B {
					if !r.sendBatch(jobs, queue, false, B) {
						return
					}
					capAvail -= B
				}
				queue = dropTaken(queue)
			}
		}
	}
	if err := r.in.Err(); err != nil {
		r.fail(err)
		return
	}
	for imgAvail > 0 {
		n := min(B, imgAvail)
		if !r.sendBatch(jobs, queue, true, n) {
			return
		}
		imgAvail -= n
	}
	for capAvail > 0 {
		n := min(B, capAvail)
		if !r.sendBatch(jobs, queue, false, n) {
			return
		}
		capAvail -= n
	}
}

// piece is a run of rows to embed: a record batch (retained for the queue)
// and the stream row of its first row.
type piece struct {
	rec   arrow.RecordBatch
	first int64
}

// pieces is the current input batch whole, or with --split the runs of rows
// of that split as zero-copy slices.
func (r *runner) pieces(rec arrow.RecordBatch) ([]piece, error) {
	first := r.in.FirstRow()
	if r.split == "" {
		rec.Retain()
		return []piece{{rec, first}}, nil
	}
	splits, err := stream.Strings(rec, stream.ColSplit)
	if err != nil {
		return nil, r.in.Errorf("batch %d: %w", r.in.BatchIndex(), err)
	}
	var out []piece
	for i := 0; i < len(splits); {
		if splits[i] != r.split {
			i++
			continue
		}
		j := i + 1
		for j < len(splits) && splits[j] == r.split {
			j++
		}
		out = append(out, piece{rec.NewSlice(int64(i), int64(j)), first + int64(i)})
		i = j
	}
	return out, nil
}

// newPending reads the input columns of rec (already retained) and checks
// its token ids.
func (r *runner) newPending(rec arrow.RecordBatch, first int64) (*pending, error) {
	p := &pending{rec: rec, first: first}
	var err error
	if r.ins.Pixels {
		if r.ins.Decode {
			p.pix, err = r.decode(rec, first)
		} else if p.pix, err = stream.Pixels(rec); err != nil {
			err = r.in.Errorf("rows from %d: %w", first, err)
		}
		if err != nil {
			return nil, err
		}
		p.nimg = p.pix.Rows()
		p.img = make([]float32, p.nimg*r.e.dim)
	}
	if r.ins.Tokens {
		if p.tok, err = stream.CaptionTokens(rec); err != nil {
			return nil, r.in.Errorf("rows from %d: %w", first, err)
		}
		if err := r.checkIDs(p); err != nil {
			return nil, err
		}
		p.ncap = int(p.tok.Offsets[len(p.tok.Offsets)-1])
		p.caps = make([]float32, p.ncap*r.e.dim)
	}
	return p, nil
}

// imageSource decodes in's images (Inputs.Decode) with the model's
// preprocessing on all cores.
func (e *Embedder) imageSource(in *stream.Reader, root string) (*decode.Source, error) {
	pool, err := imageproc.NewPool(e.pre.Geometry, 0)
	if err != nil {
		return nil, err
	}
	src, err := decode.NewSource(in.Schema(), root, pool)
	if err != nil {
		return nil, in.Errorf("%w", err)
	}
	return src, nil
}

// decode decodes rec's images; the first that fails is the error.
func (r *runner) decode(rec arrow.RecordBatch, first int64) (stream.PixelRows, error) {
	pix := stream.PixelRows{Width: r.ins.Side * r.ins.Side * 3}
	pix.Values = make([]byte, int(rec.NumRows())*pix.Width)
	errs, err := r.images.Decode(pix.Values, rec, first)
	if err != nil {
		return pix, r.in.Errorf("rows from %d: %w", first, err)
	}
	for _, e := range errs {
		if e != nil {
			return pix, r.in.Errorf("%w", e)
		}
	}
	return pix, nil
}

// dropTaken removes leading batches whose items have all been sent.
func dropTaken(q []*pending) []*pending {
	i := 0
	for i < len(q) && q[i].imgTaken == q[i].nimg && q[i].capTaken == q[i].ncap {
		i++
	}
	return q[i:]
}

// sendBatch gathers the next n images (or captions) from the queue into a
// free buffer and sends them.
func (r *runner) sendBatch(jobs chan<- job, queue []*pending, image bool, n int) bool {
	j := job{image: image, n: n}
	if image {
		select {
		case j.pix = <-r.freePix:
		case <-r.ctx.Done():
			return false
		}
	} else {
		select {
		case j.ids = <-r.freeIDs:
		case <-r.ctx.Done():
			return false
		}
	}
	got := 0
	for _, p := range queue {
		if got == n {
			break
		}
		if image {
			k := min(n-got, p.nimg-p.imgTaken)
			if k == 0 {
				continue
			}
			px := p.pix.Width
			for i := range k {
				copy(j.pix[(got+i)*px:(got+i+1)*px], p.pix.Row(p.imgTaken+i))
			}
			j.spans = append(j.spans, span{p, p.imgTaken, k})
			p.imgTaken += k
			got += k
		} else {
			k := min(n-got, p.ncap-p.capTaken)
			if k == 0 {
				continue
			}
			C := p.tok.Width
			copy(j.ids[got*C:(got+k)*C], p.tok.Values[p.capTaken*C:(p.capTaken+k)*C])
			j.spans = append(j.spans, span{p, p.capTaken, k})
			p.capTaken += k
			got += k
		}
	}
	if got != n {
		panic(fmt.Sprintf("embed: gathered %d of %d items", got, n))
	}
	if image {
		j.pix = j.pix[:n*r.ins.Side*r.ins.Side*3]
	} else {
		j.ids = j.ids[:n*r.ins.Context]
	}
	return r.send(jobs, j)
}

// checkIDs rejects token ids outside the model's vocabulary, naming the row,
// its image_id when there is one, and the caption.
func (r *runner) checkIDs(p *pending) error {
	V := int32(r.e.VocabSize())
	for k, id := range p.tok.Values {
		if id >= 0 && id < V {
			continue
		}
		item := k / p.tok.Width
		row := sort.Search(p.tok.Rows(), func(i int) bool { return int(p.tok.Offsets[i+1]) > item })
		where := fmt.Sprintf("row %d", p.first+int64(row))
		if ids, err := stream.Strings(p.rec, stream.ColImageID); err == nil {
			where += fmt.Sprintf(" (image_id %s)", ids[row])
		}
		return r.in.Errorf("%s: caption %d: token id %d is outside the model's vocabulary [0, %d); tokenize with the model's vocab.json and merges.txt",
			where, item-int(p.tok.Offsets[row]), id, V)
	}
	return nil
}

// compute runs the model on each batch in order and hands finished row
// batches, oldest first, to the writer.
func (r *runner) compute(jobs <-chan job, done chan<- *pending) {
	var queue []*pending
	var out []float32
	for j := range jobs {
		if r.ctx.Err() != nil {
			if j.enter != nil {
				j.enter.rec.Release()
			}
			continue
		}
		if j.enter != nil {
			queue = append(queue, j.enter)
		} else {
			dim := r.e.dim
			if cap(out) < j.n*dim {
				out = make([]float32, j.n*dim)
			}
			out = out[:j.n*dim]
			var err error
			if j.image {
				err = r.e.ImageBatch(out, j.pix, j.n)
				r.freePix <- j.pix[:cap(j.pix)]
			} else {
				err = r.e.TextBatch(out, j.ids, j.n)
				r.freeIDs <- j.ids[:cap(j.ids)]
			}
			if err != nil {
				r.fail(r.in.Errorf("rows %d to %d: %w", j.spans[0].p.first, lastRow(j), err))
				continue
			}
			got := 0
			for _, s := range j.spans {
				if j.image {
					copy(s.p.img[s.at*dim:(s.at+s.n)*dim], out[got*dim:(got+s.n)*dim])
					s.p.imgDone += s.n
				} else {
					copy(s.p.caps[s.at*dim:(s.at+s.n)*dim], out[got*dim:(got+s.n)*dim])
					s.p.capDone += s.n
				}
				got += s.n
			}
			if j.image {
				r.prog.add(j.n, 0)
			} else {
				r.prog.add(0, j.n)
			}
		}
		for len(queue) > 0 && queue[0].complete() {
			select {
			case done <- queue[0]:
			case <-r.ctx.Done():
				queue[0].rec.Release()
			}
			queue = queue[1:]
		}
	}
	for _, p := range queue {
		if r.ctx.Err() == nil {
			r.fail(fmt.Errorf("embed: internal error: rows from %d left unembedded", p.first))
		}
		p.rec.Release()
	}
}

func lastRow(j job) int64 {
	p := j.spans[len(j.spans)-1].p
	return p.first + p.rec.NumRows() - 1
}

// write adds the embedding columns to finished row batches and writes them.
func (r *runner) write(done <-chan *pending) {
	for p := range done {
		if r.ctx.Err() == nil {
			if err := r.writeOne(p); err != nil {
				r.fail(err)
			}
		}
		p.rec.Release()
	}
}

func (r *runner) writeOne(p *pending) error {
	var cols []arrow.Array
	if r.ins.Pixels {
		cols = append(cols, stream.NewImageEmbeddings(stream.Vectors{Width: r.e.dim, Values: p.img}))
	}
	if r.ins.Tokens {
		cols = append(cols, stream.NewCaptionEmbeddings(stream.VectorLists{Width: r.e.dim, Values: p.caps, Offsets: p.tok.Offsets}))
	}
	out, err := stream.SetColumns(p.rec, r.fields, cols)
	for _, c := range cols {
		c.Release()
	}
	if err != nil {
		return r.in.Errorf("rows from %d: %w", p.first, err)
	}
	defer out.Release()
	if err := r.w.Write(out); err != nil {
		return err
	}
	r.rows += out.NumRows()
	return nil
}

// progress prints throughput to stderr every few seconds.
type progress struct {
	w                io.Writer
	every            time.Duration
	start, last      time.Time
	images, captions int64
}

func (p *progress) add(images, captions int) {
	p.images += int64(images)
	p.captions += int64(captions)
	if p.w == nil {
		return
	}
	if now := time.Now(); now.Sub(p.last) >= p.every {
		p.last = now
		s := now.Sub(p.start).Seconds()
		fmt.Fprintf(p.w, "embed: %d images (%.1f/s), %d captions (%.1f/s)\n",
			p.images, float64(p.images)/s, p.captions, float64(p.captions)/s)
	}
}
