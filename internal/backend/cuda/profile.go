//go:build cuda || cudaemu

package cuda

import (
	"fmt"
	"os"
	"sort"
	"time"
)

// Profiling (CLIPLINE_CUDA_PROFILE=1): every operation is bracketed by a
// pair of events on the stream; the pairs queue up in pending and are
// resolved (cuEventElapsedTime) only after a wait the backend does anyway
// (Sync, Download, SumSquares), so profiling adds launches but no waits.
// Nested spans — "(gemm)", "(bf16 convert)" inside Linear — are counted
// separately and also inside their operation's time. A span's GPU time runs
// from its first to its last queued work, so it includes the device idling
// while the host was still queueing the op; HostMS shows the host's side.

type openSpan struct {
	name  string
	start gpuEvent
	ev    bool // start was recorded
	t0    time.Time
}

type doneSpan struct {
	name       string
	start, end gpuEvent
}

type profiler struct {
	free    []gpuEvent
	all     []gpuEvent
	stack   []openSpan
	pending []doneSpan
	acc     map[string]*ProfileEntry
	err     error
}

// maxPendingSpans bounds the events in flight; past it the profiler waits
// for the stream itself (not counted as a host sync).
const maxPendingSpans = 1 << 14

func profilingRequested() bool { return os.Getenv("CLIPLINE_CUDA_PROFILE") == "1" }

func newProfiler() *profiler { return &profiler{acc: map[string]*ProfileEntry{}} }

func (b *Backend) event() (gpuEvent, bool) {
	p := b.prof
	if n := len(p.free); n > 0 {
		e := p.free[n-1]
		p.free = p.free[:n-1]
		return e, true
	}
	e, err := b.g.eventCreate()
	if err != nil {
		if p.err == nil {
			p.err = err
		}
		return e, false
	}
	p.all = append(p.all, e)
	return e, true
}

// spanBegin opens a span named name (no-op unless profiling).
func (b *Backend) spanBegin(name string) {
	p := b.prof
	if p == nil {
		return
	}
	e, ok := b.event()
	if ok {
		if err := b.g.eventRecord(e); err != nil && p.err == nil {
			p.err = err
		}
	}
	p.stack = append(p.stack, openSpan{name: name, start: e, ev: ok, t0: time.Now()})
}

// spanEnd closes the innermost span.
func (b *Backend) spanEnd() {
	p := b.prof
	if p == nil || len(p.stack) == 0 {
		return
	}
	s := p.stack[len(p.stack)-1]
	p.stack = p.stack[:len(p.stack)-1]
	name := s.name
	a := p.entry(name)
	a.HostMS += float64(time.Since(s.t0).Nanoseconds()) / 1e6
	a.Calls++
	if !s.ev {
		return
	}
	e, ok := b.event()
	if !ok {
		p.free = append(p.free, s.start)
		return
	}
	if err := b.g.eventRecord(e); err != nil && p.err == nil {
		p.err = err
	}
	p.pending = append(p.pending, doneSpan{name: name, start: s.start, end: e})
	if len(p.pending) >= maxPendingSpans {
		b.fail(b.g.sync())
		b.resolveProfile()
	}
}

func (p *profiler) entry(name string) *ProfileEntry {
	a := p.acc[name]
	if a == nil {
		a = &ProfileEntry{Op: name}
		p.acc[name] = a
	}
	return a
}

// resolveProfile adds up the pending spans; the stream has just been
// waited for, so every one of them is complete.
func (b *Backend) resolveProfile() {
	p := b.prof
	if p == nil {
		return
	}
	for _, s := range p.pending {
		ms, err := b.g.eventElapsed(s.start, s.end)
		if err != nil {
			if p.err == nil {
				p.err = fmt.Errorf("%s: %w", s.name, err)
			}
		} else {
			p.entry(s.name).GPUms += float64(ms)
		}
		p.free = append(p.free, s.start, s.end)
	}
	p.pending = p.pending[:0]
}

// syncStream waits for the stream: a host sync, counted; the profile's
// pending spans are resolved after it.
func (b *Backend) syncStream() error {
	b.syncs++
	err := b.g.sync()
	if err == nil {
		b.resolveProfile()
	}
	return err
}

// enterOp is enter plus a profile span for operation name; leaveOp ends both.
func (b *Backend) enterOp(name string) {
	b.enter()
	b.spanBegin(name)
}

func (b *Backend) leaveOp() {
	b.spanEnd()
	b.leave()
}

// Profiling reports whether the backend records per-operation times
// (CLIPLINE_CUDA_PROFILE=1 when it was opened).
func (b *Backend) Profiling() bool { return b.prof != nil }

// HostSyncs is the number of times the host has waited for the stream
// (Sync, Download, SumSquares, SumSquaresMany, ...) since New.
func (b *Backend) HostSyncs() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.syncs
}

// ResetProfile clears the accumulated profile (after warm-up, say). It
// waits for the stream without counting a host sync.
func (b *Backend) ResetProfile() {
	if b.prof == nil {
		return
	}
	b.enter()
	defer b.leave()
	b.fail(b.g.sync())
	b.resolveProfile()
	b.prof.acc = map[string]*ProfileEntry{}
}

// Profile waits for the stream (not counted as a host sync) and returns the
// accumulated figures, longest GPU time first; nil unless profiling.
func (b *Backend) Profile() ([]ProfileEntry, error) {
	if b.prof == nil {
		return nil, nil
	}
	b.enter()
	defer b.leave()
	b.fail(b.g.sync())
	b.resolveProfile()
	out := make([]ProfileEntry, 0, len(b.prof.acc))
	for _, a := range b.prof.acc {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].GPUms != out[j].GPUms {
			return out[i].GPUms > out[j].GPUms
		}
		return out[i].Op < out[j].Op
	})
	return out, b.prof.err
}

func (b *Backend) destroyProfiler() {
	if b.prof == nil {
		return
	}
	for _, e := range b.prof.all {
		b.g.eventDestroy(e)
	}
	b.prof = nil
}
