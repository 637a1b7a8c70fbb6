package jsonl

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
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
