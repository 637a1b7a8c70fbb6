package imageproc

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Pool decodes many images in parallel, one Processor per goroutine (so
// filter coefficients are reused across images of the same size), keeping
// results in input order. A Pool may be reused for many batches but not
// from several goroutines at once.
type Pool struct {
	procs []*Processor
}

// NewPool returns a pool of workers goroutines (0 or less: GOMAXPROCS).
func NewPool(g Geometry, workers int) (*Pool, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	p := &Pool{procs: make([]*Processor, workers)}
	for i := range p.procs {
		var err error
		if p.procs[i], err = NewProcessor(g); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// OutLen is the length of one image's output (CropH*CropW*3).
func (p *Pool) OutLen() int { return p.procs[0].OutLen() }

// Files decodes paths[i] into dst[i*OutLen():(i+1)*OutLen()] (dst must
// hold len(paths) images) and returns one error per path, nil where the
// image decoded; a failed image's slot is zeroed. Errors name the path.
func (p *Pool) Files(dst []byte, paths []string) []error {
	return p.each(dst, len(paths), func(proc *Processor, slot []byte, i int) error {
		_, err := proc.File(slot, paths[i])
		return err
	})
}

// Bytes decodes the encoded images data[i] (a stream's image_bytes, read in
// place: no temporary files) into dst as Files does. Errors name the
// image by name(i).
func (p *Pool) Bytes(dst []byte, data [][]byte, name func(i int) string) []error {
	return p.each(dst, len(data), func(proc *Processor, slot []byte, i int) error {
		_, err := proc.Bytes(slot, data[i], name(i))
		return err
	})
}

// each runs fn for images 0..n-1 on the pool's workers, image i into its
// slot of dst; a failed image's slot is zeroed.
func (p *Pool) each(dst []byte, n int, fn func(proc *Processor, slot []byte, i int) error) []error {
	size := p.OutLen()
	if len(dst) < n*size {
		panic("imageproc.Pool: dst too short")
	}
	errs := make([]error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for _, proc := range p.procs[:min(len(p.procs), n)] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				slot := dst[i*size : (i+1)*size]
				if err := fn(proc, slot, i); err != nil {
					errs[i] = err
					clear(slot)
				}
			}
		}()
	}
	wg.Wait()
	return errs
}
