package cuda

import (
	"fmt"

	"github.com/clipline/clipline/internal/backend"
)

// allocation is one pool block: a buffer returned by Alloc and every view
// Slice makes of it share it.
type allocation struct {
	ptr   uintptr // device address of element 0
	n     int     // elements (float32 or int32, 4 bytes each)
	freed bool
	// shadows are bf16 copies of ranges of this allocation (weights of
	// Linear in bf16 mode); a write to an overlapping range makes them stale.
	shadows []*shadow
	// gen counts writes to any part of the allocation, so a bf16 scratch
	// copy of an activation can tell it is still current (Backend.bf16Act).
	gen uint64
}

// shadow is a bf16 copy of elements [off, off+n) of an allocation.
type shadow struct {
	off, n int
	ptr    uintptr // device address of the bf16 copy (2 bytes per element)
	valid  bool    // false until converted, and again after a write to the range
}

// devBuf is the CUDA backend's backend.Buf: n float32s from element off of a.
type devBuf struct {
	a      *allocation
	off, n int
	root   bool // returned by Alloc (Free releases it); false for views
}

func (b *devBuf) Len() int { return b.n }

func (b *devBuf) Slice(off, n int) backend.Buf {
	if off < 0 || n < 0 || off+n > b.n {
		panic(fmt.Sprintf("cuda: Slice(%d, %d) of a buffer of %d elements", off, n, b.n))
	}
	return &devBuf{a: b.a, off: b.off + off, n: n}
}

// addr is the device address of the view's first element.
func (b *devBuf) addr() uintptr {
	if b.a.freed {
		panic("cuda: use of a freed buffer")
	}
	return b.a.ptr + uintptr(b.off)*4
}

// written records that the kernel about to be queued writes the view: bf16
// shadows overlapping it are stale from then on. Host bookkeeping runs in
// the same order as the stream, so a shadow converted before this write is
// never used after it.
func (b *devBuf) written() {
	b.a.gen++
	for _, s := range b.a.shadows {
		if s.off < b.off+b.n && b.off < s.off+s.n {
			s.valid = false
		}
	}
}

// shadowOf returns the shadow of exactly this view, or nil.
func (b *devBuf) shadowOf() *shadow {
	for _, s := range b.a.shadows {
		if s.off == b.off && s.n == b.n {
			return s
		}
	}
	return nil
}

// devIntBuf is the CUDA backend's backend.IntBuf.
type devIntBuf struct {
	a *allocation
	n int
}

func (b *devIntBuf) Len() int { return b.n }

func (b *devIntBuf) addr() uintptr {
	if b.a.freed {
		panic("cuda: use of a freed buffer")
	}
	return b.a.ptr
}

// devByteBuf is the CUDA backend's backend.ByteBuf: n bytes at the start of
// an allocation of ceil(n/4) 4-byte elements.
type devByteBuf struct {
	a *allocation
	n int
}

func (b *devByteBuf) Len() int { return b.n }

func (b *devByteBuf) addr() uintptr {
	if b.a.freed {
		panic("cuda: use of a freed buffer")
	}
	return b.a.ptr
}

func asByteBuf(b backend.ByteBuf) *devByteBuf {
	d, ok := b.(*devByteBuf)
	if !ok || d == nil {
		panic(fmt.Sprintf("cuda: byte buffer of type %T does not belong to the CUDA backend", b))
	}
	return d
}

// asBuf converts a backend.Buf of this backend (nil stays nil).
func asBuf(b backend.Buf) *devBuf {
	if b == nil {
		return nil
	}
	d, ok := b.(*devBuf)
	if !ok {
		panic(fmt.Sprintf("cuda: buffer of type %T does not belong to the CUDA backend", b))
	}
	if d == nil {
		return nil
	}
	return d
}

func asIntBuf(b backend.IntBuf) *devIntBuf {
	d, ok := b.(*devIntBuf)
	if !ok || d == nil {
		panic(fmt.Sprintf("cuda: int buffer of type %T does not belong to the CUDA backend", b))
	}
	return d
}

// need panics unless buffer b (named what) holds at least n elements.
func need(what string, b *devBuf, n int) {
	if b == nil {
		panic(fmt.Sprintf("cuda: %s is nil", what))
	}
	if b.n < n {
		panic(fmt.Sprintf("cuda: %s has %d elements, need %d", what, b.n, n))
	}
}

// needOpt is need for a buffer that may be nil.
func needOpt(what string, b *devBuf, n int) {
	if b != nil {
		need(what, b, n)
	}
}

func needInt(what string, b *devIntBuf, n int) {
	if b.n < n {
		panic(fmt.Sprintf("cuda: %s has %d elements, need %d", what, b.n, n))
	}
}
