// Package parallel runs loops over index ranges on several goroutines: the
// CPU backend's operations and the retrieval metrics' scoring share it.
package parallel

import (
	"sync"
	"sync/atomic"
)

// For splits [0,n) into contiguous chunks, one per worker, each of at least
// grain items, and runs fn on them concurrently (the first chunk on the
// calling goroutine). With one chunk it is a plain call, so tiny operations
// pay no goroutine overhead. fn gets the chunk's worker index w
// (0 <= w < workers) for per-worker scratch.
func For(workers, n, grain int, fn func(w, lo, hi int)) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	chunks := min(workers, (n+grain-1)/grain)
	if chunks <= 1 {
		fn(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	wg.Add(chunks - 1)
	for c := 1; c < chunks; c++ {
		lo, hi := c*n/chunks, (c+1)*n/chunks
		go func() {
			defer wg.Done()
			fn(c, lo, hi)
		}()
	}
	fn(0, 0, n/chunks)
	wg.Wait()
}

// Tasks runs fn(task, w) for task in [0,n) on up to workers goroutines (one
// of them the caller's) that take tasks from a shared counter, balancing
// tasks of uneven cost (causal attention rows, GEMM edge tiles). fn gets
// the worker index w (0 <= w < workers) for per-worker scratch.
func Tasks(workers, n int, fn func(task, w int)) {
	if n <= 0 {
		return
	}
	workers = min(workers, n)
	if workers <= 1 {
		for i := range n {
			fn(i, 0)
		}
		return
	}
	var next atomic.Int64
	run := func(w int) {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			fn(i, w)
		}
	}
	var wg sync.WaitGroup
	wg.Add(workers - 1)
	for w := 1; w < workers; w++ {
		go func() {
			defer wg.Done()
			run(w)
		}()
	}
	run(0)
	wg.Wait()
}
