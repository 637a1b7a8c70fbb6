package train

import (
	"slices"

	"github.com/clipline/clipline/internal/backend"
)

// prefetcher gathers the images of the training step's chunks into host
// buffers, the next chunk's in the background while the current one is
// on the device. From a memory-mapped file the gather is where pages are
// read (random rows of a shuffled epoch), so doing it ahead keeps the
// step from waiting on the disk. Two buffers alternate: model.Batch's
// contract (each result is uploaded before the next call) frees the one
// handed out last by the time the next is asked for.
type prefetcher struct {
	be   backend.Backend
	per  int
	bufs [2][]uint8 // page-locked on a GPU: uploads are DMAs
	cur  int        // the buffer handed out last
	// ahead is the gather running into bufs[1-cur], if any.
	ahead *gather
	// hits and misses count the chunks gathered ahead and those gathered
	// when asked for (the first of an epoch, or a wrong guess).
	hits, misses int
}

// gather is one chunk's images being copied into a buffer.
type gather struct {
	d    *Data
	imgs []int32
	done chan struct{}
}

func newPrefetcher(be backend.Backend, rows, per int) *prefetcher {
	p := &prefetcher{be: be, per: per}
	for i := range p.bufs {
		p.bufs[i] = backend.HostBytes(be, rows*per)
	}
	return p
}

// get returns the pixels of d's images imgs (one chunk) and starts
// gathering d's images next (nil: nothing known to come) in the
// background. What get returns is the same whether or not next was
// guessed right.
func (p *prefetcher) get(d *Data, imgs, next []int32) []uint8 {
	g := p.ahead
	p.wait()
	p.ahead = nil
	p.cur = 1 - p.cur
	buf := p.bufs[p.cur][:len(imgs)*p.per]
	if g == nil || g.d != d || !slices.Equal(g.imgs, imgs) {
		fill(buf, d, imgs, p.per)
		p.misses++
	} else {
		p.hits++
	}
	if len(next) > 0 {
		g := &gather{d: d, imgs: next, done: make(chan struct{})}
		dst := p.bufs[1-p.cur][:len(next)*p.per]
		go func() {
			defer close(g.done)
			fill(dst, g.d, g.imgs, p.per)
		}()
		p.ahead = g
	}
	return buf
}

// wait lets the background gather finish (both buffers are then free of
// it); the gathered chunk stays ahead.
func (p *prefetcher) wait() {
	if p.ahead != nil {
		<-p.ahead.done
	}
}

// free waits for the background gather and releases the buffers.
func (p *prefetcher) free() {
	p.wait()
	for i, b := range p.bufs {
		backend.FreeHostBytes(p.be, b)
		p.bufs[i] = nil
	}
}

// fill copies images imgs of d into dst, one after another.
func fill(dst []uint8, d *Data, imgs []int32, per int) {
	for i, img := range imgs {
		copy(dst[i*per:(i+1)*per], d.Image(int(img)))
	}
}
