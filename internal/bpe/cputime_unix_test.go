//go:build unix

package bpe

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user + system) this process has used, so
// benchmarks can report cost per item that does not depend on how busy the
// machine is.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
