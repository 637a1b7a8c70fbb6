//go:build unix

package embed

import "syscall"

// processCPU is the process's user+system CPU time in seconds, so
// benchmarks can report cost per item independent of other load on the
// machine.
func processCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return -1
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
