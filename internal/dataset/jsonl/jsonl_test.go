package jsonl

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/dataset"
)

// setup writes images (empty files suffice: jsonl only checks existence)
// and the JSONL text into a temp dir and returns the file path.
func setup(t *testing.T, images []string, text string) (dir, file string) {
	t.Helper()
	dir = t.TempDir()
	for _, im := range images {
		p := filepath.Join(dir, im)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("img"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file = filepath.Join(dir, "pairs.jsonl")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, file
}

func TestGroupingMultiPositiveAndAliases(t *testing.T) {
	text := `{"query": "a dog on a beach", "positive": "img/dog.jpg"}
{"caption": "a brown dog", "image": "img/dog.jpg"}

{"query": "two animals", "positive": ["img/cat.jpg", "img/dog.jpg"], "negative": "img/car.jpg"}
{"query": "a cat asleep", "positive": ["img/cat.jpg"]}
   
{"query": "a dog on a beach", "positive": "./img/dog.jpg"}
{"query": "a red car", "positive": "img/car.jpg", "split": "val"}
`
	dir, file := setup(t, []string{"img/dog.jpg", "img/cat.jpg", "img/car.jpg"}, text)
	rows, st, err := ReadFile(file, Options{})
	if err != nil {
		t.Fatal(err)
	}
	abs := func(p string) string { return filepath.Join(dir, p) }
	want := []dataset.Row{
		{ImageID: "img/dog.jpg", Split: "train", ImagePath: abs("img/dog.jpg"), Captions: []string{"a dog on a beach", "a brown dog", "two animals"}},
		{ImageID: "img/cat.jpg", Split: "train", ImagePath: abs("img/cat.jpg"), Captions: []string{"two animals", "a cat asleep"}},
		{ImageID: "img/car.jpg", Split: "val", ImagePath: abs("img/car.jpg"), Captions: []string{"a red car"}},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Fatalf("rows:\n%+v\nwant:\n%+v", rows, want)
	}
	if st.Lines != 6 || st.Pairs != 7 || st.Repeats != 1 {
		t.Fatalf("stats %+v", st)
	}
	if err := dataset.Validate(rows); err != nil {
		t.Fatal(err)
	}
}

func TestImageRootAndAbsolutePaths(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "a.png"), []byte("x"), 0o644)
	other := filepath.Join(t.TempDir(), "b.png")
	os.WriteFile(other, []byte("x"), 0o644)
	_, file := setup(t, nil, `{"query":"q1","positive":"a.png"}`+"\n"+`{"query":"q2","positive":"`+other+`"}`)
	rows, _, err := ReadFile(file, Options{ImageRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	if rows[0].ImagePath != filepath.Join(root, "a.png") || rows[1].ImagePath != other || rows[1].ImageID != other {
		t.Fatalf("%+v", rows)
	}
}

func TestMalformedLinesNameFileAndLine(t *testing.T) {
	cases := map[string]string{
		`{"query": "x", "positive": "a.jpg"`:                                     "malformed JSON",
		`not json`:                                                               "malformed JSON",
		`{"positive": "a.jpg"}`:                                                  `no "query"`,
		`{"query": "  ", "positive": "a.jpg"}`:                                   `empty "query"`,
		`{"query": "x"}`:                                                         `no "positive"`,
		`{"query": "x", "positive": 3}`:                                          "a number",
		`{"query": "x", "positive": ["a.jpg", null]}`:                            `"positive"[1] is null`,
		`{"query": "x", "positive": []}`:                                         "empty list",
		`{"query": "x", "image": "a.jpg", "positive": "a.jpg"}`:                  `both "positive" and "image"`,
		`{"query": "x", "caption": "y", "positive": "a.jpg"}`:                    `both "query" and "caption"`,
		`{"query": "x", "positive": "a.jpg"} trailing`:                           "malformed JSON",
		`{"query": "x", "positive": "a.jpg"}{"query": "y", "positive": "a.jpg"}`: "malformed JSON",
		`[1, 2]`: "malformed JSON",
	}
	for bad, want := range cases {
		text := `{"query": "fine", "positive": "a.jpg"}` + "\n\n" + bad + "\n"
		_, file := setup(t, []string{"a.jpg"}, text)
		_, _, err := ReadFile(file, Options{})
		if err == nil {
			t.Errorf("%s: accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), file+":3:") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q should name %s:3 and say %q", bad, err, file, want)
		}
		// With SkipBad the line is dropped and counted.
		var log bytes.Buffer
		rows, st, err := ReadFile(file, Options{SkipBad: true, Log: &log})
		if err != nil || len(rows) != 1 || st.BadLines != 1 || !strings.Contains(log.String(), ":3:") {
			t.Errorf("%s: skip-bad gave rows %v stats %+v err %v log %q", bad, rows, st, err, log.String())
		}
	}
}

func TestMissingImage(t *testing.T) {
	text := `{"query": "q1", "positive": ["a.jpg", "gone.jpg"]}
{"query": "q2", "positive": "gone.jpg"}
{"query": "q3", "positive": "a.jpg"}`
	_, file := setup(t, []string{"a.jpg"}, text)
	_, _, err := ReadFile(file, Options{})
	if err == nil || !strings.Contains(err.Error(), "gone.jpg") || !strings.Contains(err.Error(), file+":1:") {
		t.Fatalf("want error naming gone.jpg at line 1, got %v", err)
	}
	rows, st, err := ReadFile(file, Options{SkipMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || !reflect.DeepEqual(rows[0].Captions, []string{"q1", "q3"}) {
		t.Fatalf("rows %+v", rows)
	}
	if st.MissingFiles != 1 || st.MissingPairs != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestEmptyInputs(t *testing.T) {
	for name, text := range map[string]string{"empty": "", "blank": "\n  \n\t\n"} {
		_, file := setup(t, nil, text)
		_, _, err := ReadFile(file, Options{})
		if err == nil || !strings.Contains(err.Error(), "empty input") {
			t.Errorf("%s: got %v", name, err)
		}
	}
	// Every line skipped: still an error, never an empty stream.
	_, file := setup(t, nil, "garbage\n")
	if _, _, err := ReadFile(file, Options{SkipBad: true}); err == nil || !strings.Contains(err.Error(), "no usable") {
		t.Errorf("all-bad: got %v", err)
	}
	if _, _, err := ReadFile(filepath.Join(t.TempDir(), "nope.jsonl"), Options{}); err == nil {
		t.Error("missing file accepted")
	}
}

func TestSplitConflictAndBOM(t *testing.T) {
	_, file := setup(t, []string{"a.jpg"}, "\xef\xbb\xbf"+`{"query":"x","positive":"a.jpg"}`+"\r\n"+`{"query":"y","positive":"a.jpg","split":"test"}`+"\r\n")
	_, _, err := ReadFile(file, Options{})
	if err == nil || !strings.Contains(err.Error(), ":2:") || !strings.Contains(err.Error(), "one split") {
		t.Fatalf("got %v", err)
	}
	// A default split applies to lines without one.
	_, file = setup(t, []string{"a.jpg"}, "\xef\xbb\xbf"+`{"query":"x","positive":"a.jpg"}`+"\r\n")
	rows, _, err := ReadFile(file, Options{DefaultSplit: "test"})
	if err != nil || rows[0].Split != "test" || rows[0].Captions[0] != "x" {
		t.Fatalf("%+v %v", rows, err)
	}
}

func TestUnicodeAndEscapes(t *testing.T) {
	_, file := setup(t, []string{"ü.jpg"}, `{"query":"caf\u00e9 \"quoted\" 猫","positive":"ü.jpg"}`)
	rows, _, err := ReadFile(file, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rows[0].Captions[0] != `café "quoted" 猫` {
		t.Fatalf("%q", rows[0].Captions[0])
	}
}

// drawText names images im00.jpg.. with three caption lines each, the lines
// of all images interleaved (reversed when rev), and keyed images' lines
// with their "split".
func drawText(n int, rev bool, keyed map[int]string) (images []string, text string) {
	var lines []string
	for c := 0; c < 3; c++ {
		for i := 0; i < n; i++ {
			key := ""
			if s, ok := keyed[i]; ok {
				key = fmt.Sprintf(`, "split": %q`, s)
			}
			lines = append(lines, fmt.Sprintf(`{"query": "caption %d of %d", "positive": "im%02d.jpg"%s}`, c, i, i, key))
		}
	}
	for i := 0; i < n; i++ {
		images = append(images, fmt.Sprintf("im%02d.jpg", i))
	}
	if rev {
		slices.Reverse(lines)
	}
	return images, strings.Join(lines, "\n") + "\n"
}

func splitsByID(t *testing.T, rows []dataset.Row) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, r := range rows {
		if len(r.Captions) != 3 {
			t.Fatalf("%s has %d captions, want its 3 in one row", r.ImageID, len(r.Captions))
		}
		m[r.ImageID] = r.Split
	}
	return m
}

func TestDrawSplitsByImage(t *testing.T) {
	draw := dataset.Fractions{Val: 0.2, Test: 0.1, Seed: 5}
	images, text := drawText(20, false, nil)
	_, file := setup(t, images, text)
	rows, st, err := ReadFile(file, Options{Draw: draw})
	if err != nil {
		t.Fatal(err)
	}
	got := splitsByID(t, rows)
	if c := dataset.SplitCounts(rows); c["train"] != 14 || c["val"] != 4 || c["test"] != 2 {
		t.Fatalf("counts %v, want train=14 val=4 test=2", c)
	}
	if st.Drawn != 20 || st.Keyed != 0 {
		t.Fatalf("stats %+v", st)
	}
	// The draw is synthetic's, over the ids in sorted order (which these
	// names already are), whatever the order of the lines.
	for i, s := range draw.Draw(20) {
		if id := images[i]; got[id] != s {
			t.Fatalf("%s in %s, the draw says %s", id, got[id], s)
		}
	}
	images, text = drawText(20, true, nil)
	_, file = setup(t, images, text)
	rows, _, err = ReadFile(file, Options{Draw: draw})
	if err != nil {
		t.Fatal(err)
	}
	if rev := splitsByID(t, rows); !reflect.DeepEqual(rev, got) {
		t.Fatalf("reversed lines changed the splits:\n%v\n%v", rev, got)
	}
	draw.Seed = 6
	rows, _, err = ReadFile(file, Options{Draw: draw})
	if err != nil {
		t.Fatal(err)
	}
	if other := splitsByID(t, rows); reflect.DeepEqual(other, got) {
		t.Fatal("another seed drew the same splits")
	}
	// The train share goes to DefaultSplit.
	rows, _, err = ReadFile(file, Options{Draw: draw, DefaultSplit: "fit"})
	if err != nil {
		t.Fatal(err)
	}
	if c := dataset.SplitCounts(rows); c["fit"] != 14 || c["train"] != 0 {
		t.Fatalf("counts %v", c)
	}
	if _, _, err := ReadFile(file, Options{Draw: dataset.Fractions{Val: 0.5, Test: 0.5}}); err == nil || !strings.Contains(err.Error(), "leave room for train") {
		t.Fatalf("fractions summing to 1: %v", err)
	}
}

func TestDrawKeepsSplitKeys(t *testing.T) {
	images, text := drawText(10, false, map[int]string{3: "test", 7: "val"})
	_, file := setup(t, images, text)
	rows, st, err := ReadFile(file, Options{Draw: dataset.Fractions{Val: 0.25, Test: 0.25, Seed: 1}})
	if err != nil {
		t.Fatal(err)
	}
	got := splitsByID(t, rows)
	if got["im03.jpg"] != "test" || got["im07.jpg"] != "val" {
		t.Fatalf("keyed images moved: %v", got)
	}
	// 25% of the 8 unkeyed images each, plus the keyed ones.
	if c := dataset.SplitCounts(rows); c["train"] != 4 || c["val"] != 3 || c["test"] != 3 {
		t.Fatalf("counts %v", c)
	}
	if st.Keyed != 2 || st.Drawn != 8 {
		t.Fatalf("stats %+v", st)
	}
	var log bytes.Buffer
	st.Report(&log)
	if !strings.Contains(log.String(), "2 images kept their \"split\" key; the other 8 were split") {
		t.Fatalf("report %q", log.String())
	}
	// An image with a key on one line and none on another has no one split.
	_, file = setup(t, []string{"a.jpg"}, `{"query":"x","positive":"a.jpg"}`+"\n"+`{"query":"y","positive":"a.jpg","split":"val"}`+"\n")
	_, _, err = ReadFile(file, Options{Draw: dataset.Fractions{Val: 0.5}})
	if err == nil || !strings.Contains(err.Error(), ":2:") || !strings.Contains(err.Error(), `(none: no "split" key) on line 1`) {
		t.Fatalf("got %v", err)
	}
}

func TestReportSaysWhenNothingIsHeldOut(t *testing.T) {
	images, text := drawText(4, false, nil)
	_, file := setup(t, images, text)
	_, st, err := ReadFile(file, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	st.Report(&log)
	if !strings.Contains(log.String(), "--val-frac and --test-frac") {
		t.Fatalf("report %q", log.String())
	}
}

// TestWriteSplitsReadsBack: vembed-factory's layout, one file per split
// with paths relative to the folder, reads back as the rows it came from.
func TestWriteSplitsReadsBack(t *testing.T) {
	dir, _ := setup(t, []string{"images/a.jpg", "images/b.png", "c.jpg"}, "")
	abs := func(p string) string { return filepath.Join(dir, p) }
	rows := []dataset.Row{
		{ImageID: "images/a.jpg", Split: "train", ImagePath: abs("images/a.jpg"), Captions: []string{"a red \"square\"", "ünïcode"}},
		{ImageID: "images/b.png", Split: "val", ImagePath: abs("images/b.png"), Captions: []string{"b"}},
		{ImageID: "c.jpg", Split: "train", ImagePath: abs("c.jpg"), Captions: []string{"c"}},
	}
	var log bytes.Buffer
	paths, err := WriteSplits(dir, rows, &log)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{abs("train.jsonl"), abs("val.jsonl")}; !reflect.DeepEqual(paths, want) {
		t.Fatalf("paths %v, want %v", paths, want)
	}
	if want := "prepare: 3 images (train=2 val=1), 4 captions -> " + paths[0] + " " + paths[1] + "\n"; log.String() != want {
		t.Fatalf("log %q, want %q", log.String(), want)
	}
	raw, _ := os.ReadFile(abs("val.jsonl"))
	if string(raw) != `{"query":"b","positive":"images/b.png"}`+"\n" {
		t.Fatalf("val.jsonl %q", raw)
	}
	for _, tc := range []struct {
		file string
		want []dataset.Row
	}{{"train.jsonl", []dataset.Row{rows[0], rows[2]}}, {"val.jsonl", rows[1:2]}} {
		split := strings.TrimSuffix(tc.file, ".jsonl")
		got, _, err := ReadFile(abs(tc.file), Options{DefaultSplit: split})
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Fatalf("%s read back %+v (%v), want %+v", tc.file, got, err, tc.want)
		}
	}
}
