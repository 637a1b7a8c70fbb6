package cputime

import (
	"runtime"
	"testing"
)

func TestProcess(t *testing.T) {
	switch runtime.GOOS {
	case "windows", "plan9", "js", "wasip1":
		t.Skip("no process CPU time here")
	}
	// Starting the test binary alone costs CPU time, and it never goes back.
	t0 := Process()
	x := 0
	for i := range 10_000_000 {
		x ^= i
	}
	if t1 := Process(); t0 <= 0 || t1 < t0 {
		t.Errorf("CPU time %v, then %v after work (%d)", t0, t1, x)
	}
}
