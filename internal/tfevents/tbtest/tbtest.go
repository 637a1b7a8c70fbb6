// Package tbtest reads TensorBoard event files for tests with a reader
// independent of internal/tfevents: read_events.py, Debian's python3 with
// python3-protobuf. Without them tests skip, and fail instead with
// CLIPLINE_REQUIRE_PROTOBUF=1 (as .ci/run sets).
package tbtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/clipline/clipline/internal/testreq"
)

const python = testreq.DebianPython

// Event is one event as read_events.py prints it; Values are [tag, value]
// pairs in file order.
type Event struct {
	WallTime    float64  `json:"wall_time"`
	Step        int64    `json:"step"`
	FileVersion string   `json:"file_version"`
	Values      [][2]any `json:"values"`
}

// Value is v's value for tag, and whether it has one.
func (e Event) Value(tag string) (float64, bool) {
	for _, v := range e.Values {
		if v[0] == tag {
			f, ok := v[1].(float64)
			return f, ok
		}
	}
	return 0, false
}

// Require skips t (or fails it under CLIPLINE_REQUIRE_PROTOBUF=1) where
// Python's protobuf is missing.
func Require(t testing.TB) {
	t.Helper()
	testreq.Python(t, "CLIPLINE_REQUIRE_PROTOBUF", "the TensorBoard reader", "google.protobuf", "python3-protobuf")
}

// Read parses the event file at path with read_events.py, failing t on a
// bad checksum or message.
func Read(t testing.TB, path string) []Event {
	t.Helper()
	Require(t)
	_, file, _, _ := runtime.Caller(0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, python, filepath.Join(filepath.Dir(file), "read_events.py"), path)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("read_events.py %s: %v\n%s", path, err, stderr.Bytes())
	}
	var evs []Event
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("read_events.py output %q: %v", sc.Text(), err)
		}
		evs = append(evs, e)
	}
	return evs
}
