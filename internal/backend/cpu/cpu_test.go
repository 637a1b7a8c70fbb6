package cpu_test

import (
	"testing"

	"github.com/clipline/clipline/internal/backend/backendtest"
	"github.com/clipline/clipline/internal/backend/cpu"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, cpu.New(), backendtest.DefaultTolerances())
}

// One worker takes the serial paths (no task splitting, no per-worker
// partial sums); three exercise uneven splits.
func TestConformanceOneWorker(t *testing.T) {
	backendtest.Run(t, cpu.NewWorkers(1), backendtest.DefaultTolerances())
}

func TestConformanceThreeWorkers(t *testing.T) {
	backendtest.Run(t, cpu.NewWorkers(3), backendtest.DefaultTolerances())
}
