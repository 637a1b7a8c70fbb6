// Package clitest runs a test binary again as a stage, for tests of what
// only a process shows: exit statuses and signals. The test's TestMain
// dispatches on Mode:
//
//	func TestMain(m *testing.M) {
//		if clitest.Mode() != "" {
//			cli.Main("stage", run)
//			os.Exit(0)
//		}
//		os.Exit(m.Run())
//	}
package clitest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

const modeEnv = "CLIPLINE_TEST_STAGE"

// Timeout bounds every child process.
const Timeout = 60 * time.Second

// Mode is the mode a Command started this process with ("" in the test
// run itself).
func Mode() string { return os.Getenv(modeEnv) }

// Command is this test binary with args, to be run in mode (non-empty);
// it is killed after Timeout or when the test ends.
func Command(t testing.TB, mode string, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), modeEnv+"="+mode)
	return cmd
}

// ExitStatus is the status of a finished cmd given Wait's error; an error
// other than a non-zero exit fails the test.
func ExitStatus(t testing.TB, cmd *exec.Cmd, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode()
}

// Interrupted checks a stage's clean stop: for SIGINT and SIGTERM it runs
// mode with args(outDir) (outDir a fresh directory its output goes in),
// writes all of stream but the 8-byte end-of-stream marker to its stdin,
// waits until something appears in outDir (the stage has started its
// output and waits for more rows), signals it, and requires the exit
// status 128 + the signal and outDir left empty.
func Interrupted(t *testing.T, mode string, stream []byte, args func(outDir string) []string) {
	t.Helper()
	for sig, want := range map[syscall.Signal]int{syscall.SIGINT: 130, syscall.SIGTERM: 143} {
		outDir := t.TempDir()
		cmd := Command(t, mode, args(outDir)...)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if _, err := stdin.Write(stream[:len(stream)-8]); err != nil {
			t.Fatal(err)
		}
		started := false
		for deadline := time.Now().Add(20 * time.Second); !started && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			ents, _ := os.ReadDir(outDir)
			started = len(ents) > 0
		}
		if !started {
			t.Fatalf("%v: %s never started its output", sig, mode)
		}
		cmd.Process.Signal(sig)
		if got := ExitStatus(t, cmd, cmd.Wait()); got != want {
			t.Errorf("%v: exit status %d, want %d", sig, got, want)
		}
		stdin.Close()
		if ents, _ := os.ReadDir(outDir); len(ents) != 0 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Errorf("%v: %s left %s", sig, mode, strings.Join(names, ", "))
		}
	}
}
