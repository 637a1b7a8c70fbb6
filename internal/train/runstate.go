package train

import (
	"fmt"
	"path/filepath"
	"strconv"
)

// RunState reads the trainer state of run directory dir's newest
// checkpoint (final/ holds none): its log history and base model, as
// report's HTML shows them.
func RunState(dir string) (*State, error) {
	r, err := readRunDir(dir)
	if err != nil {
		return nil, err
	}
	if len(r.checkpoints) == 0 {
		return nil, fmt.Errorf("train: %s has no checkpoint-STEP directory", dir)
	}
	return readState(filepath.Join(dir, "checkpoint-"+strconv.Itoa(r.checkpoints[len(r.checkpoints)-1])))
}
