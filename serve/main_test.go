package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clipline/clipline/internal/cli"
	"github.com/clipline/clipline/internal/cli/clitest"
	"github.com/clipline/clipline/internal/index"
	"github.com/clipline/clipline/internal/index/indextest"
	"github.com/clipline/clipline/internal/stream"
)

func TestMain(m *testing.M) {
	if clitest.Mode() != "" {
		cli.Main("serve", run)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// bundle indexes a few synthetic scenes embedded with the base model.
func bundle(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	in, err := stream.Open(indextest.Stream(t, dir, 12))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out := filepath.Join(dir, "idx")
	if _, err := index.Build(in, out, index.BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	return out
}

// lines collects a child's stderr and hands each line to a channel.
func lines(t *testing.T, r io.Reader) <-chan string {
	ch := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			t.Log("serve: " + sc.Text())
			ch <- sc.Text()
		}
		close(ch)
	}()
	return ch
}

// await returns the first line matching re, failing after 30 s.
func await(t *testing.T, ch <-chan string, re string) []string {
	t.Helper()
	pat := regexp.MustCompile(re)
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-ch:
			if !ok {
				t.Fatalf("serve ended without printing %q", re)
			}
			if m := pat.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-timeout:
			t.Fatalf("no %q from serve after 30s", re)
		}
	}
}

// TestSignals: the binary serves on the address it prints, reloads on
// SIGHUP and stops with status 0 on SIGTERM.
func TestSignals(t *testing.T) {
	idx := bundle(t)
	cmd := clitest.Command(t, "serve", "--model", indextest.BaseModel(), "--index", idx, "--addr", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := lines(t, stderr)
	addr := await(t, ch, `^serve: http://([0-9.:]+)/ `)[1]
	res, err := http.Post("http://"+addr+"/search/text?query=a+red+star&top_k=3", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || strings.Count(string(body), `"rank"`) != 3 {
		t.Errorf("search: %d %s", res.StatusCode, body)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	await(t, ch, `^serve: reloaded \(generation 2\)`)
	cmd.Process.Signal(syscall.SIGTERM)
	await(t, ch, `^serve: stopped`)
	for range ch {
	}
	if code := clitest.ExitStatus(t, cmd, cmd.Wait()); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
}

// TestOtherModel: serve refuses a bundle made with another model, naming
// both models and their hashes.
func TestOtherModel(t *testing.T) {
	idx := bundle(t)
	other := filepath.Join(t.TempDir(), "other")
	if err := os.CopyFS(other, os.DirFS(indextest.BaseModel())); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(other, "config.json")
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The same weights and architecture, another file: another hash.
	if err := os.WriteFile(cfg, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := clitest.Command(t, "serve", "--model", other, "--index", idx, "--addr", "127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	if code := clitest.ExitStatus(t, cmd, err); code != 1 {
		t.Fatalf("exit status %d, want 1: %s", code, out)
	}
	for _, want := range []string{"serve: index " + idx, other, indextest.BaseModel(), "sha256:"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the refusal does not name %q:\n%s", want, out)
		}
	}
	if n := strings.Count(string(out), "sha256:"); n != 2 {
		t.Errorf("the refusal names %d hashes, want both:\n%s", n, out)
	}
}
