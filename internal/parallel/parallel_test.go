package parallel

import (
	"sync/atomic"
	"testing"
)

// Every index runs exactly once, on a worker index below the worker count.
func TestForAndTasksCoverOnce(t *testing.T) {
	for _, workers := range []int{0, 1, 3, 8} {
		for _, n := range []int{0, 1, 5, 100} {
			for _, grain := range []int{0, 1, 7, 1000} {
				hits := make([]atomic.Int32, n)
				For(workers, n, grain, func(w, lo, hi int) {
					if w < 0 || w >= max(workers, 1) {
						t.Errorf("For: worker %d of %d", w, workers)
					}
					for i := lo; i < hi; i++ {
						hits[i].Add(1)
					}
				})
				for i := range hits {
					if got := hits[i].Load(); got != 1 {
						t.Fatalf("For(%d, %d, %d): index %d ran %d times", workers, n, grain, i, got)
					}
				}
			}
			hits := make([]atomic.Int32, n)
			Tasks(workers, n, func(task, w int) {
				if w < 0 || w >= max(workers, 1) {
					t.Errorf("Tasks: worker %d of %d", w, workers)
				}
				hits[task].Add(1)
			})
			for i := range hits {
				if got := hits[i].Load(); got != 1 {
					t.Fatalf("Tasks(%d, %d): task %d ran %d times", workers, n, i, got)
				}
			}
		}
	}
}
