package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Encoder is the model as serve uses it (*clip.Model).
type Encoder interface {
	Dim() int
	ContextLength() int
	// Tokenize returns ContextLength ids per text; safe to call while the
	// model encodes.
	Tokenize(texts []string) ([]int32, error)
	EncodeTokens(ids []int32) ([][]float32, error)
	EncodeImageBytes(images [][]byte) ([][]float32, error)
}

// errBusy is a full queue: the request is answered 503 at once.
var errBusy = errors.New("server busy: the encode queue is full; retry shortly")

// job is one text (one row of token ids) or one image to encode.
type job struct {
	ctx  context.Context
	ids  []int32 // a text's ContextLength ids, or nil
	img  []byte  // an encoded image, or nil
	done chan encoded
	enq  time.Time
}

type encoded struct {
	vec    []float32
	err    error
	queued time.Duration // from enqueue to its batch's start
	encode time.Duration // its batch's encode time
}

// batcher micro-batches the encodes of concurrent requests: one goroutine
// takes the first queued job, gathers more for up to window (or until
// maxBatch), and encodes the texts in one EncodeTokens call and the images
// in one EncodeImageBytes call. The queue is bounded: a job that finds it
// full fails at once with errBusy.
type batcher struct {
	name     string // "model" or "compare", the metrics label
	enc      Encoder
	queue    chan *job
	window   time.Duration
	maxBatch int
	met      *metrics
	stopped  chan struct{}
}

func newBatcher(name string, enc Encoder, queue int, window time.Duration, maxBatch int, met *metrics) *batcher {
	b := &batcher{name: name, enc: enc, queue: make(chan *job, queue), window: window,
		maxBatch: maxBatch, met: met, stopped: make(chan struct{})}
	go b.loop()
	return b
}

// stop ends the loop once the queue is drained; no job may be submitted
// after it.
func (b *batcher) stop() {
	close(b.queue)
	<-b.stopped
}

// submit queues j and waits for its vector, its context's end, or errBusy.
func (b *batcher) submit(ctx context.Context, ids []int32, img []byte) (encoded, error) {
	j := &job{ctx: ctx, ids: ids, img: img, done: make(chan encoded, 1), enq: time.Now()}
	select {
	case b.queue <- j:
		b.met.queueDepth.WithLabelValues(b.name).Inc()
	default:
		b.met.rejected.WithLabelValues(b.name).Inc()
		return encoded{}, errBusy
	}
	select {
	case e := <-j.done:
		return e, e.err
	case <-ctx.Done():
		return encoded{}, ctx.Err()
	}
}

func (b *batcher) loop() {
	defer close(b.stopped)
	for first := range b.queue {
		batch := b.gather(first)
		b.met.queueDepth.WithLabelValues(b.name).Sub(float64(len(batch)))
		b.run(batch)
	}
}

// gather collects jobs after first: all that are queued, then whatever
// arrives within the window, up to maxBatch.
func (b *batcher) gather(first *job) []*job {
	batch := []*job{first}
	var timer <-chan time.Time
	if b.window > 0 {
		t := time.NewTimer(b.window)
		defer t.Stop()
		timer = t.C
	}
	for len(batch) < b.maxBatch {
		select {
		case j, ok := <-b.queue:
			if !ok {
				return batch
			}
			batch = append(batch, j)
			continue
		default:
		}
		if timer == nil {
			return batch
		}
		select {
		case j, ok := <-b.queue:
			if !ok {
				return batch
			}
			batch = append(batch, j)
		case <-timer:
			return batch
		}
	}
	return batch
}

// run encodes a batch; jobs whose request has gone (timed out, client
// left) are dropped first.
func (b *batcher) run(batch []*job) {
	start := time.Now()
	var texts, images []*job
	for _, j := range batch {
		switch {
		case j.ctx.Err() != nil:
			j.done <- encoded{err: j.ctx.Err()}
		case j.img != nil:
			images = append(images, j)
		default:
			texts = append(texts, j)
		}
	}
	if len(texts) > 0 {
		b.met.batchSize.WithLabelValues(b.name, "text").Observe(float64(len(texts)))
		ids := make([]int32, 0, len(texts)*b.enc.ContextLength())
		for _, j := range texts {
			ids = append(ids, j.ids...)
		}
		t0 := time.Now()
		vecs, err := b.enc.EncodeTokens(ids)
		finish(texts, vecs, err, start, time.Since(t0))
	}
	if len(images) > 0 {
		b.met.batchSize.WithLabelValues(b.name, "image").Observe(float64(len(images)))
		data := make([][]byte, len(images))
		for i, j := range images {
			data[i] = j.img
		}
		t0 := time.Now()
		vecs, err := b.enc.EncodeImageBytes(data)
		if err == nil {
			finish(images, vecs, nil, start, time.Since(t0))
			return
		}
		// One bad image fails the call (its header was fine, its data is
		// not): encode them one by one so that only its request fails.
		for _, j := range images {
			t1 := time.Now()
			v, err := vecs, err
			if len(images) > 1 {
				v, err = b.enc.EncodeImageBytes([][]byte{j.img})
			}
			if err != nil {
				err = errorf(http.StatusBadRequest, "the image cannot be decoded: %v", err)
			}
			finish([]*job{j}, v, err, start, time.Since(t1))
		}
	}
}

func finish(jobs []*job, vecs [][]float32, err error, start time.Time, took time.Duration) {
	if err == nil && len(vecs) < len(jobs) {
		err = fmt.Errorf("encoder returned %d vectors for %d inputs", len(vecs), len(jobs))
	}
	for i, j := range jobs {
		e := encoded{err: err, queued: start.Sub(j.enq), encode: took}
		if err == nil {
			e.vec = vecs[i]
		}
		j.done <- e
	}
}
