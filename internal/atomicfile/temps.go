package atomicfile

import (
	"os"
	"sync"
)

// Temporaries not yet renamed into place, removed by RemoveTemps when a
// signal ends the process (cli.Main), so that an interrupted stage leaves
// neither its output nor a stray temporary behind.
var temps = struct {
	sync.Mutex
	paths map[string]bool
}{paths: map[string]bool{}}

// Track registers a temporary file or directory (a unique name, as
// os.CreateTemp and os.MkdirTemp make) for RemoveTemps; call the returned
// function once it is renamed into place or removed.
func Track(path string) (untrack func()) {
	temps.Lock()
	temps.paths[path] = true
	temps.Unlock()
	return func() {
		temps.Lock()
		delete(temps.paths, path)
		temps.Unlock()
	}
}

// RemoveTemps removes every tracked temporary (a directory with its
// contents). The process is about to exit: a temporary that is being written
// meanwhile may fail to, which is what an interruption means.
func RemoveTemps() {
	temps.Lock()
	defer temps.Unlock()
	for p := range temps.paths {
		os.RemoveAll(p)
		delete(temps.paths, p)
	}
}
