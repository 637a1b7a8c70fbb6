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
