package cpu_test

import (
	"runtime"
	"sync"
	"testing"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/backend/backendtest"
	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/simd"
)

// TestConformance runs the suite at every simd level (the default one is
// simd.Selected()).
func TestConformance(t *testing.T) {
	for _, l := range simd.Available() {
		t.Run(l.String(), func(t *testing.T) {
			backendtest.Run(t, cpu.NewLevel(runtime.GOMAXPROCS(0), l), backendtest.DefaultTolerances())
		})
	}
}

// One worker takes the serial paths (no task splitting, no per-worker
// partial sums); three exercise uneven splits.
func TestConformanceOneWorker(t *testing.T) {
	backendtest.Run(t, cpu.NewWorkers(1), backendtest.DefaultTolerances())
}

func TestConformanceThreeWorkers(t *testing.T) {
	backendtest.Run(t, cpu.NewWorkers(3), backendtest.DefaultTolerances())
}

// TestConcurrentCalls runs the same products from several goroutines at
// once (GradCache chunks, data-parallel callers): results must match a
// lone call exactly, since each call's arithmetic is fixed by its shape.
func TestConcurrentCalls(t *testing.T) {
	be := cpu.New()
	M, K, N := 70, 300, 90
	in, w, bias := be.Alloc(M*K), be.Alloc(N*K), be.Alloc(N)
	for i, d := range [][]float32{cpu.Data(in), cpu.Data(w), cpu.Data(bias)} {
		for j := range d {
			d[j] = float32((j*7+i*3)%13) / 13
		}
	}
	want := be.Alloc(M * N)
	be.Linear(want, in, w, bias, M, K, N)
	for g, o := range concurrentLinear(be, in, w, bias, M, K, N) {
		for i, v := range cpu.Data(o) {
			if v != cpu.Data(want)[i] {
				t.Fatalf("goroutine %d: out[%d] = %g, alone %g", g, i, v, cpu.Data(want)[i])
			}
		}
	}
}

// concurrentLinear runs the same Linear from six goroutines at once on be
// and returns their outputs, for tests that compare them with a lone call.
func concurrentLinear(be backend.Backend, in, w, bias backend.Buf, M, K, N int) []backend.Buf {
	outs := make([]backend.Buf, 6)
	var wg sync.WaitGroup
	for g := range outs {
		outs[g] = be.Alloc(M * N)
		wg.Add(1)
		go func() {
			defer wg.Done()
			be.Linear(outs[g], in, w, bias, M, K, N)
		}()
	}
	wg.Wait()
	return outs
}
