package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clipline/clipline/internal/atomicfile"
	"github.com/clipline/clipline/internal/cli/clitest"
)

func TestExitCode(t *testing.T) {
	base := errors.New("boom")
	for _, c := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{base, 1},
		{WithExitCode(base, 3), 3},
		{fmt.Errorf("context: %w", WithExitCode(base, 4)), 4},
		{Signal{os.Interrupt}, 130},
		{fmt.Errorf("train: %w", Signal{syscall.SIGTERM}), 143},
	} {
		if got := ExitCode(c.err); got != c.want {
			t.Errorf("ExitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
	if err := WithExitCode(base, 3); !errors.Is(err, base) || err.Error() != "boom" {
		t.Errorf("WithExitCode hides its error: %v", err)
	}
	if s := (Signal{syscall.SIGTERM}).Error(); s != "interrupted by SIGTERM" {
		t.Errorf("Signal.Error() = %q", s)
	}
}

// TestMain lets the signal tests run Main in a child process (this test
// binary, re-executed by clitest.Command).
func TestMain(m *testing.M) {
	switch clitest.Mode() {
	case "":
		os.Exit(m.Run())
	case "plain":
		// An unfinished output's temporary, then wait to be ended.
		Main("stage", func(args []string, stdout, stderr io.Writer) error {
			tmp := filepath.Join(args[0], ".out.tmp-1")
			os.WriteFile(tmp, []byte("partial"), 0o644)
			atomicfile.Track(tmp)
			fmt.Fprintln(stderr, "ready")
			time.Sleep(time.Minute)
			return nil
		})
	case "catch":
		Main("stage", func(args []string, stdout, stderr io.Writer) error {
			ctx, stop := CatchInterrupt(context.Background(), "finishing")
			defer stop()
			fmt.Fprintln(stderr, "ready")
			<-ctx.Done()
			fmt.Fprintln(stderr, "cancelled:", context.Cause(ctx))
			if args[0] == "slow" {
				time.Sleep(time.Minute) // the second signal ends it
			}
			return errors.New("stopped early")
		})
	}
	os.Exit(0)
}

// child starts mode in a child process and waits for its "ready" line.
func child(t *testing.T, mode string, args ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := clitest.Command(t, mode, args...)
	pr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(pr)
	if !sc.Scan() || sc.Text() != "ready" {
		t.Fatalf("child: %q", sc.Text())
	}
	return cmd, sc
}

func exitStatus(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	return clitest.ExitStatus(t, cmd, cmd.Wait())
}

// A signal ends a stage with 128+n and removes its unfinished outputs.
func TestSignalExits(t *testing.T) {
	for sig, want := range map[syscall.Signal]int{syscall.SIGINT: 130, syscall.SIGTERM: 143} {
		dir := t.TempDir()
		cmd, _ := child(t, "plain", dir)
		cmd.Process.Signal(sig)
		if got := exitStatus(t, cmd); got != want {
			t.Errorf("%v: exit status %d, want %d", sig, got, want)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("%v: left %v behind", sig, ents)
		}
	}
}

// A stage that catches the first signal finishes and exits with its
// status; a second signal ends it at once.
func TestCatchInterrupt(t *testing.T) {
	cmd, sc := child(t, "catch", "fast")
	cmd.Process.Signal(syscall.SIGTERM)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if got := exitStatus(t, cmd); got != 143 {
		t.Errorf("exit status %d, want 143", got)
	}
	want := []string{"stage: SIGTERM: finishing (again to stop at once)", "cancelled: interrupted by SIGTERM", "stage: stopped early"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("stderr:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}

	cmd, sc = child(t, "catch", "slow")
	cmd.Process.Signal(syscall.SIGINT)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "cancelled") {
	}
	start := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	if got := exitStatus(t, cmd); got != 130 {
		t.Errorf("second signal: exit status %d, want 130", got)
	}
	if d := time.Since(start); !(d < 10*time.Second) {
		t.Errorf("second signal took %s to end the stage", d)
	}
}
