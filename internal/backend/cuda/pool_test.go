package cuda

import (
	"errors"
	"testing"
)

// fakeMemory is a device allocator with a capacity, for pool tests.
type fakeMemory struct {
	next, used, capacity int
	live                 map[uintptr]int
	allocs, frees        int
}

func newFake(capacity int) *fakeMemory {
	return &fakeMemory{next: 1 << 20, capacity: capacity, live: map[uintptr]int{}}
}

var errOOM = errors.New("out of memory")

func (f *fakeMemory) alloc(bytes int) (uintptr, error) {
	if f.used+bytes > f.capacity {
		return 0, errOOM
	}
	p := uintptr(f.next)
	f.next += bytes
	f.used += bytes
	f.live[p] = bytes
	f.allocs++
	return p, nil
}

func (f *fakeMemory) free(p uintptr) error {
	n, ok := f.live[p]
	if !ok {
		return errors.New("double free")
	}
	delete(f.live, p)
	f.used -= n
	f.frees++
	return nil
}

func TestRoundSize(t *testing.T) {
	for _, c := range []struct{ in, want int }{
		{0, 512}, {1, 512}, {512, 512}, {513, 1024}, {1<<20 - 1, 1 << 20},
		{1 << 20, 2 << 20}, {2 << 20, 2 << 20}, {2<<20 + 1, 4 << 20},
	} {
		if got := roundSize(c.in); got != c.want {
			t.Errorf("roundSize(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestPoolReusesFreedBlocks(t *testing.T) {
	f := newFake(1 << 30)
	p := newPool(f)
	a, _ := p.get(1000)
	b, _ := p.get(3 << 20)
	if p.stats.InUse != 1024+4<<20 || p.stats.Allocs != 2 {
		t.Fatalf("stats after two allocs: %+v", p.stats)
	}
	p.put(a)
	p.put(b)
	if p.stats.InUse != 0 || p.stats.Cached != 1024+4<<20 {
		t.Fatalf("stats after frees: %+v", p.stats)
	}
	// Same class: reused, no new device allocation.
	a2, _ := p.get(1020)
	b2, _ := p.get(4 << 20)
	if a2 != a || b2 != b || f.allocs != 2 || p.stats.Reuses != 2 {
		t.Fatalf("not reused: a %x/%x b %x/%x allocs %d stats %+v", a2, a, b2, b, f.allocs, p.stats)
	}
	if p.stats.PeakInUse != 1024+4<<20 || p.stats.PeakReserved != 1024+4<<20 {
		t.Fatalf("peaks: %+v", p.stats)
	}
}

func TestPoolTakesSlightlyLargerBlockOnly(t *testing.T) {
	f := newFake(1 << 30)
	p := newPool(f)
	big, _ := p.get(10 << 20)
	p.put(big)
	// 9 MiB rounds to 10 MiB: the cached block.
	x, _ := p.get(9 << 20)
	if x != big {
		t.Fatal("equal class not reused")
	}
	p.put(x)
	// 7.5 MiB rounds to 8 MiB; 10 MiB is within 25%: reused.
	y, _ := p.get(15 << 19)
	if y != big || p.stats.InUse != 10<<20 {
		t.Fatalf("within 25%%: got %x, stats %+v", y, p.stats)
	}
	p.put(y)
	// 4 MiB: 10 MiB is far too large; a new block.
	z, _ := p.get(4 << 20)
	if z == big || f.allocs != 2 {
		t.Fatalf("oversized block handed out: allocs %d", f.allocs)
	}
}

func TestPoolTrimsCacheWhenDeviceIsFull(t *testing.T) {
	f := newFake(10 << 20)
	p := newPool(f)
	a, _ := p.get(6 << 20)
	p.put(a)
	// 8 MiB does not fit beside the cached 6 MiB: the pool releases its
	// cache and retries.
	b, err := p.get(8 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if f.frees != 1 || p.stats.Cached != 0 || p.stats.InUse != 8<<20 {
		t.Fatalf("frees %d stats %+v", f.frees, p.stats)
	}
	if _, err := p.get(4 << 20); !errors.Is(err, errOOM) {
		t.Fatalf("want out of memory, got %v", err)
	}
	p.put(b)
	if err := p.release(); err != nil || f.used != 0 || len(f.live) != 0 {
		t.Fatalf("release: %v, %d bytes left", err, f.used)
	}
}

func TestPoolDoubleFreePanics(t *testing.T) {
	p := newPool(newFake(1 << 30))
	a, _ := p.get(100)
	p.put(a)
	defer func() {
		if recover() == nil {
			t.Fatal("double free did not panic")
		}
	}()
	p.put(a)
}

func TestPoolResetPeak(t *testing.T) {
	p := newPool(newFake(1 << 30))
	a, _ := p.get(4 << 20)
	b, _ := p.get(2 << 20)
	p.put(a)
	p.resetPeak()
	if p.stats.PeakInUse != 2<<20 || p.stats.PeakReserved != 6<<20 {
		t.Fatalf("%+v", p.stats)
	}
	p.put(b)
}
