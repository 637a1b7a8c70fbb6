package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clipline/clipline/internal/cli"
	"github.com/clipline/clipline/internal/cli/clitest"
)

// TestMain runs the stage itself when the interruption test re-executes
// this binary (clitest.Command).
func TestMain(m *testing.M) {
	if clitest.Mode() != "" {
		cli.Main("tokenize", run)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A signal while tokenize writes --out FILE leaves neither FILE nor its
// temporary, and the exit status is 128 + the signal.
func TestInterruptedOut(t *testing.T) {
	model := learnedModel(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.arrow")
	writeStream(t, in, testCaptions)
	raw, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	for sig, want := range map[syscall.Signal]int{syscall.SIGINT: 130, syscall.SIGTERM: 143} {
		outDir := t.TempDir()
		out := filepath.Join(outDir, "tok.arrow")
		cmd := clitest.Command(t, "tokenize", "--model", model, "--out", out)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The whole stream but its end-of-stream marker: the stage has
		// started its output and waits for more input.
		if _, err := stdin.Write(raw[:len(raw)-8]); err != nil {
			t.Fatal(err)
		}
		started := false
		for deadline := time.Now().Add(20 * time.Second); !started && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			ents, _ := os.ReadDir(outDir)
			started = len(ents) > 0
		}
		if !started {
			t.Fatalf("%v: tokenize never started its output", sig)
		}
		cmd.Process.Signal(sig)
		if got := clitest.ExitStatus(t, cmd, cmd.Wait()); got != want {
			t.Errorf("%v: exit status %d, want %d", sig, got, want)
		}
		stdin.Close()
		if ents, _ := os.ReadDir(outDir); len(ents) != 0 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Errorf("%v: left %s", sig, strings.Join(names, ", "))
		}
	}
}
