//go:build unix

package cpu_test

import (
	"syscall"
	"time"
)

// cpuTime is the process's user+system CPU time: benchmarks report flops
// per CPU-second next to wall-clock rates, since on a shared machine the
// former measures the code and the latter also its neighbours.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
