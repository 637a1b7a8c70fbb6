package atomicfile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.json")
	for _, c := range []struct {
		data string
		perm os.FileMode
	}{{"first", 0o644}, {"second, longer", 0o600}, {"", 0o640}} {
		if err := WriteFile(path, []byte(c.data), c.perm); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != c.data {
			t.Errorf("read %q, %v; want %q", got, err, c.data)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != c.perm {
			t.Errorf("mode %v, want %v", fi.Mode().Perm(), c.perm)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %v, want only out.json", ents)
	}
}

func TestWriteFileFails(t *testing.T) {
	dir := t.TempDir()
	// No such directory: nothing to clean up.
	if err := WriteFile(filepath.Join(dir, "absent", "f"), []byte("x"), 0o644); err == nil {
		t.Error("write into a missing directory succeeded")
	}
	// The rename fails onto a non-empty directory: the temporary goes, the
	// directory stays.
	target := filepath.Join(dir, "d")
	if err := os.MkdirAll(filepath.Join(target, "keep"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(target, []byte("x"), 0o644); err == nil {
		t.Error("rename onto a directory succeeded")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 || ents[0].Name() != "d" || !ents[0].IsDir() {
		t.Errorf("directory holds %v, want only d/", ents)
	}
}

// RemoveTemps removes tracked temporaries, files and directories, and
// forgets untracked ones.
func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	file, sub, kept := filepath.Join(dir, ".f.tmp1"), filepath.Join(dir, ".d.tmp2"), filepath.Join(dir, "kept")
	os.WriteFile(file, nil, 0o644)
	os.MkdirAll(filepath.Join(sub, "x"), 0o755)
	os.WriteFile(kept, nil, 0o644)
	Track(file)
	Track(sub)
	Track(kept)() // renamed into place: no longer a temporary
	RemoveTemps()
	if ents, _ := os.ReadDir(dir); len(ents) != 1 || ents[0].Name() != "kept" {
		t.Errorf("directory holds %v, want only kept", ents)
	}
	if len(temps.paths) != 0 {
		t.Errorf("registry still holds %v", temps.paths)
	}
}

// A named pipe (as /dev/null or /dev/stdout, not a regular file) is written
// into, not replaced by a file renamed over it.
func TestWriteFileSpecial(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	got := make(chan string)
	go func() {
		b, _ := os.ReadFile(fifo)
		got <- string(b)
	}()
	if err := WriteFile(fifo, []byte("through"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "through" {
		t.Errorf("the pipe's reader got %q", s)
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("%s is no longer a named pipe: %v %v", fifo, fi.Mode(), err)
	}
}
