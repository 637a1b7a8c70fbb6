package cuda

import (
	"fmt"
	"slices"
)

// rawMemory is the device allocator under the pool (cuMemAlloc/cuMemFree on
// a GPU; a fake in the tests).
type rawMemory interface {
	alloc(bytes int) (uintptr, error)
	free(ptr uintptr) error
}

// pool is a caching allocator: freed blocks are kept by size and handed out
// again, because cuMemAlloc and cuMemFree are slow and cuMemFree
// synchronises the device. All device work runs on one stream, so a block
// freed by the host can be reused at once: work queued later on that stream
// runs after the work that used the block before.
//
// Sizes are rounded to classes (512 B below 1 MiB, 2 MiB above, the driver's
// own granularity) so that buffers of nearly equal size share blocks. A
// request takes a cached block of its class, or failing that the smallest
// cached block at most 25% larger; otherwise it allocates, and if the device
// is out of memory it releases every cached block and tries once more.
type pool struct {
	raw   rawMemory
	free  map[int][]uintptr // cached blocks by block size
	sizes map[uintptr]int   // block size of every live block
	stats MemStats
}

func newPool(raw rawMemory) *pool {
	return &pool{raw: raw, free: map[int][]uintptr{}, sizes: map[uintptr]int{}}
}

const (
	smallClass = 512
	largeClass = 2 << 20
	largeFrom  = 1 << 20
)

// roundSize is the size class of a request of bytes.
func roundSize(bytes int) int {
	if bytes <= 0 {
		return smallClass
	}
	if bytes < largeFrom {
		return ceilDiv(bytes, smallClass) * smallClass
	}
	return ceilDiv(bytes, largeClass) * largeClass
}

// get returns a block of at least bytes bytes.
func (p *pool) get(bytes int) (uintptr, error) {
	size := roundSize(bytes)
	if ptr, got, ok := p.take(size); ok {
		p.stats.Reuses++
		p.use(ptr, got)
		return ptr, nil
	}
	ptr, err := p.raw.alloc(size)
	if err != nil && p.stats.Cached > 0 {
		p.trim()
		ptr, err = p.raw.alloc(size)
	}
	if err != nil {
		return 0, fmt.Errorf("cuda: allocating %d bytes (%d in use, %d cached): %w", size, p.stats.InUse, p.stats.Cached, err)
	}
	p.stats.Allocs++
	p.use(ptr, size)
	return ptr, nil
}

// take removes a cached block of size, or the smallest one up to 25% larger.
func (p *pool) take(size int) (uintptr, int, bool) {
	best := 0
	if len(p.free[size]) > 0 {
		best = size
	} else {
		for s, l := range p.free {
			if len(l) > 0 && s > size && s <= size+size/4 && (best == 0 || s < best) {
				best = s
			}
		}
	}
	if best == 0 {
		return 0, 0, false
	}
	l := p.free[best]
	ptr := l[len(l)-1]
	p.free[best] = l[:len(l)-1]
	p.stats.Cached -= int64(best)
	return ptr, best, true
}

func (p *pool) use(ptr uintptr, size int) {
	p.sizes[ptr] = size
	p.stats.InUse += int64(size)
	p.stats.PeakInUse = max(p.stats.PeakInUse, p.stats.InUse)
	p.stats.PeakReserved = max(p.stats.PeakReserved, p.stats.InUse+p.stats.Cached)
}

// put returns a live block to the cache.
func (p *pool) put(ptr uintptr) {
	size, ok := p.sizes[ptr]
	if !ok {
		panic(fmt.Sprintf("cuda: freeing 0x%x, which the pool did not hand out (double Free?)", ptr))
	}
	delete(p.sizes, ptr)
	p.stats.InUse -= int64(size)
	p.free[size] = append(p.free[size], ptr)
	p.stats.Cached += int64(size)
}

// trim releases every cached block to the device.
func (p *pool) trim() error {
	var first error
	sizes := make([]int, 0, len(p.free))
	for s := range p.free {
		sizes = append(sizes, s)
	}
	slices.Sort(sizes)
	for _, s := range sizes {
		for _, ptr := range p.free[s] {
			if err := p.raw.free(ptr); err != nil && first == nil {
				first = err
			}
			p.stats.Cached -= int64(s)
		}
		delete(p.free, s)
	}
	return first
}

// release frees everything, live blocks included (backend Close).
func (p *pool) release() error {
	first := p.trim()
	for ptr := range p.sizes {
		if err := p.raw.free(ptr); err != nil && first == nil {
			first = err
		}
	}
	p.sizes = map[uintptr]int{}
	p.stats.InUse = 0
	return first
}

// resetPeak starts a new high-water mark from the current usage.
func (p *pool) resetPeak() {
	p.stats.PeakInUse = p.stats.InUse
	p.stats.PeakReserved = p.stats.InUse + p.stats.Cached
}
