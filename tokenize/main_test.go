package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/clipline/clipline/internal/bpe"
	"github.com/clipline/clipline/internal/cputime"
	"github.com/clipline/clipline/internal/sharedtest"
	"github.com/clipline/clipline/internal/stream"
	"github.com/clipline/clipline/internal/stream/streamtest"
)

var testCaptions = [][]string{
	{"A dog runs on the beach.", "a brown dog", "Dogs &amp; waves"},
	{},
	{"Two men in red shirts are playing football in the park"},
	{"A child in a pink dress is playing with a yellow frisbee in the snow", strings.Repeat("very long caption ", 30)},
}

// writeStream writes rows with image_id, captions and a user column
// (note, utf8) that tokenize must pass through, in batches of two rows.
func writeStream(t testing.TB, path string, captions [][]string) {
	t.Helper()
	noteField := arrow.Field{Name: "note", Type: arrow.BinaryTypes.String}
	schema := arrow.NewSchema([]arrow.Field{stream.ImageIDField(), stream.CaptionsField(), noteField}, nil)
	schema = stream.WithProvenance(schema, "test", []string{"x"})
	var recs []arrow.RecordBatch
	for i := 0; i < len(captions); i += 2 {
		j := min(i+2, len(captions))
		var ids, notes []string
		for k := i; k < j; k++ {
			ids = append(ids, "img"+string(rune('0'+k)))
			notes = append(notes, "note"+string(rune('0'+k)))
		}
		cols := []arrow.Array{stream.NewStrings(ids), stream.NewStringLists(captions[i:j]), stream.NewStrings(notes)}
		rec := array.NewRecordBatch(schema, cols, int64(j-i))
		for _, c := range cols {
			c.Release()
		}
		defer rec.Release()
		recs = append(recs, rec)
	}
	streamtest.WriteFile(t, path, schema, stream.Options{}, recs...)
}

// learnedModel learns a small vocabulary into a temporary model directory.
func learnedModel(t *testing.T) string {
	t.Helper()
	var texts []string
	for _, row := range testCaptions {
		texts = append(texts, row...)
	}
	v, err := bpe.Learn(texts, 600)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := v.Save(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// readTokens is the caption_tokens of the first batch of the stream at path.
func readTokens(t *testing.T, path string) stream.Tokens {
	t.Helper()
	r, err := stream.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Next() {
		t.Fatal(r.Err())
	}
	toks, err := stream.CaptionTokens(r.Batch())
	if err != nil {
		t.Fatal(err)
	}
	return toks
}

func runOK(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := run(args, &stdout, &stderr); err != nil {
		t.Fatalf("tokenize %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stderr.String()
}

func TestEndToEnd(t *testing.T) {
	model := learnedModel(t)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.arrow"), filepath.Join(dir, "out.arrow")
	writeStream(t, in, testCaptions)
	log := runOK(t, "--model", model, "--context", "16", "--in", in, "--out", out, "--compress", "zstd")
	tok, err := bpe.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	truncated := 0
	for _, row := range testCaptions {
		for _, c := range row {
			if len(tok.Encode(c))+2 > 16 {
				truncated++
			}
		}
	}
	if want := fmt.Sprintf("4 rows, 6 captions (%d truncated to 16 tokens)", truncated); truncated == 0 || !strings.Contains(log, want) {
		t.Errorf("log %q, want %q", log, want)
	}
	r, err := stream.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	schema := r.Schema()
	if got := []string{schema.Field(0).Name, schema.Field(1).Name, schema.Field(2).Name, schema.Field(3).Name}; !slices.Equal(got, []string{"image_id", "captions", "note", "caption_tokens"}) {
		t.Errorf("columns %v", got)
	}
	if v, _ := r.Meta(stream.MetaContextLength); v != "16" {
		t.Errorf("context metadata %q", v)
	}
	if v, _ := r.Meta(stream.MetaModel); v != model {
		t.Errorf("model metadata %q", v)
	}
	prov, err := stream.Provenance(schema)
	if err != nil || len(prov) != 2 || prov[0].Stage != "test" || prov[1].Stage != "tokenize" || !slices.Contains(prov[1].Args, "--context") {
		t.Errorf("provenance %+v, %v", prov, err)
	}
	row := 0
	for r.Next() {
		rec := r.Batch()
		toks, err := stream.CaptionTokens(rec)
		if err != nil {
			t.Fatal(err)
		}
		caps, _ := stream.StringLists(rec, stream.ColCaptions)
		notes, _ := stream.Strings(rec, "note")
		if toks.Width != 16 {
			t.Fatalf("width %d", toks.Width)
		}
		for i := range caps {
			if notes[i] != "note"+string(rune('0'+row)) || !slices.Equal(caps[i], testCaptions[row]) {
				t.Errorf("row %d passed through as %q %q", row, notes[i], caps[i])
			}
			if toks.Count(i) != len(testCaptions[row]) {
				t.Fatalf("row %d: %d token rows for %d captions", row, toks.Count(i), len(testCaptions[row]))
			}
			for j, c := range testCaptions[row] {
				if got, want := toks.Item(i, j), tok.Tokenize(c, 16); !slices.Equal(got, want) {
					t.Errorf("row %d caption %d: %v, want %v", row, j, got, want)
				}
			}
			row++
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if row != len(testCaptions) {
		t.Errorf("%d rows out, want %d", row, len(testCaptions))
	}
}

// TestCLIPVocab runs the stage with the real CLIP vocabulary and checks a
// golden caption's ids.
func TestCLIPVocab(t *testing.T) {
	clip := sharedtest.Dir(t, "clip")
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.arrow"), filepath.Join(dir, "out.arrow")
	writeStream(t, in, [][]string{{"a dog", "Hello World!"}})
	runOK(t, "--model", clip, "--in", in, "--out", out)
	toks := readTokens(t, out)
	want := make([]int32, 77)
	copy(want, []int32{49406, 3306, 1002, 256, 49407}) // tokenizer_golden.jsonl
	if toks.Width != 77 || !slices.Equal(toks.Item(0, 1), want) {
		t.Errorf("width %d, ids %v", toks.Width, toks.Item(0, 1))
	}
}

func TestLearnCommand(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.arrow")
	var rows [][]string
	for range 50 {
		rows = append(rows, []string{"a red circle on a blue background", "the small green square left of a red circle"})
	}
	writeStream(t, in, rows)
	model := filepath.Join(dir, "model")
	log := runOK(t, "learn", "--captions-from", in, "--vocab-size", "540", "--out", model)
	if !strings.Contains(log, "100 captions -> 540 tokens, 26 merges") {
		t.Errorf("log %q", log)
	}
	tok, err := bpe.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"circle", "red", "a"} {
		if ids := tok.Encode(w); len(ids) != 1 {
			t.Errorf("%q is %d tokens, want 1", w, len(ids))
		}
	}
	// The learned model tokenizes the stream it came from.
	runOK(t, "--model", model, "--in", in, "--out", filepath.Join(dir, "out.arrow"))

	// Several streams: their captions are counted together, so a word of
	// the second becomes a token too.
	in2 := filepath.Join(dir, "in2.arrow")
	writeStream(t, in2, [][]string{{"triangle triangle triangle"}})
	model2 := filepath.Join(dir, "model2")
	log = runOK(t, "learn", "--captions-from", in, "--captions-from", in2, "--vocab-size", "700", "--out", model2)
	if !strings.Contains(log, "101 captions ->") {
		t.Errorf("log %q", log)
	}
	tok2, err := bpe.Load(model2)
	if err != nil {
		t.Fatal(err)
	}
	if ids := tok2.Encode("triangle"); len(ids) != 1 {
		t.Errorf("triangle is %d tokens, want 1", len(ids))
	}
}

func TestErrors(t *testing.T) {
	model := learnedModel(t)
	dir := t.TempDir()

	// A stream without captions: the error names the column and the stage.
	noCaps := filepath.Join(dir, "nocaps.arrow")
	schema := arrow.NewSchema([]arrow.Field{stream.ImageIDField()}, nil)
	ids := stream.NewStrings([]string{"a"})
	rec := array.NewRecordBatch(schema, []arrow.Array{ids}, 1)
	streamtest.WriteFile(t, noCaps, schema, stream.Options{}, rec)
	rec.Release()
	ids.Release()

	empty := filepath.Join(dir, "empty.arrow")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.arrow")
	writeStream(t, good, testCaptions)

	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"missing captions", []string{"--model", model, "--in", noCaps}, []string{"captions", "missing", noCaps}},
		{"empty input", []string{"--model", model, "--in", empty}, []string{"empty input", empty}},
		{"learn missing captions", []string{"learn", "--captions-from", noCaps, "--vocab-size", "600", "--out", dir + "/m"}, []string{"captions", "missing"}},
		{"learn empty input", []string{"learn", "--captions-from", empty, "--vocab-size", "600", "--out", dir + "/m"}, []string{"empty input"}},
		{"no model", []string{"--model", dir, "--in", good}, []string{"vocab.json"}},
		{"context too small", []string{"--model", model, "--context", "1", "--in", good}, []string{"--context 1"}},
		{"learn split without split column", []string{"learn", "--captions-from", good, "--split", "train", "--vocab-size", "600", "--out", dir + "/m"}, []string{"--split train", "column split missing"}},
		{"vocab size too small", []string{"learn", "--captions-from", good, "--vocab-size", "100", "--out", dir + "/m"}, []string{"--vocab-size 100"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, c.name+".out.arrow")
			args := append(c.args, "--out", out)
			if c.args[0] == "learn" {
				args, out = c.args, dir+"/m"
			}
			var stdout, stderr bytes.Buffer
			err := run(args, &stdout, &stderr)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("output %s written despite the error", out)
			}
		})
	}
}

// TestModelConfigCheck: a vocabulary larger than the model's text
// embedding, or a context longer than its positions, is refused.
func TestModelConfigCheck(t *testing.T) {
	model := learnedModel(t)
	cfg := `{"text_config": {"vocab_size": 512, "max_position_embeddings": 77}}`
	if err := os.WriteFile(filepath.Join(model, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(t.TempDir(), "in.arrow")
	writeStream(t, in, testCaptions)
	var stdout, stderr bytes.Buffer
	err := run([]string{"--model", model, "--in", in, "--out", in + ".out"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "vocab_size is 512") {
		t.Errorf("err %v", err)
	}
}

func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run([]string{"--help"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"caption_tokens", "--model", "learn", "<|endoftext|>"} {
		if !strings.Contains(stdout.String(), w) {
			t.Errorf("--help does not mention %q", w)
		}
	}
}

// TestBinaryPipes runs the built binary as a pipeline stage: stdin to
// stdout, and a failure as exit status 1 with one line on stderr.
func TestBinaryPipes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "tokenize")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	model := learnedModel(t)
	in := filepath.Join(dir, "in.arrow")
	writeStream(t, in, testCaptions)
	inFile, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer inFile.Close()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "--model", model)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inFile, &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	r, err := stream.NewReader(&stdout, "stdout")
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for r.Next() {
		if _, err := stream.CaptionTokens(r.Batch()); err != nil {
			t.Fatal(err)
		}
		rows += int(r.Batch().NumRows())
	}
	if r.Err() != nil || rows != len(testCaptions) {
		t.Fatalf("%d rows, %v", rows, r.Err())
	}

	stderr.Reset()
	cmd = exec.Command(bin, "--model", model, "--in", filepath.Join(dir, "absent.arrow"))
	cmd.Stderr = &stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit %v", err)
	}
	if msg := strings.TrimSuffix(stderr.String(), "\n"); strings.Contains(msg, "\n") || !strings.Contains(msg, "absent.arrow") {
		t.Errorf("stderr %q: want one line naming the input", stderr.String())
	}
}

// BenchmarkStage runs the whole stage (read, tokenize on all cores, write)
// over 20000 rows of 5 captions, with the real CLIP vocabulary when present
// (loading it, about 80 ms, is part of each run).
func BenchmarkStage(b *testing.B) {
	model := ""
	if _, err := os.Stat(filepath.Join(sharedtest.Root(), "clip", "vocab.json")); err == nil {
		model = filepath.Join(sharedtest.Root(), "clip")
	}
	words := strings.Fields("a the man woman dog child is are running sitting playing on in near beach park street red blue green shirt hat with his her two three people group of young old small large white black ball water grass")
	rows := make([][]string, 20000)
	seed := uint32(1)
	for i := range rows {
		for range 5 {
			var sb strings.Builder
			for k := range 8 + int(seed%6) {
				seed = seed*1664525 + 1013904223
				if k > 0 {
					sb.WriteByte(' ')
				}
				sb.WriteString(words[int(seed>>8)%len(words)])
			}
			sb.WriteString(".")
			rows[i] = append(rows[i], sb.String())
		}
	}
	dir := b.TempDir()
	in := filepath.Join(dir, "in.arrow")
	writeStream(b, in, rows)
	if model == "" {
		var texts []string
		for _, r := range rows {
			texts = append(texts, r...)
		}
		v, err := bpe.Learn(texts, 1024)
		if err != nil {
			b.Fatal(err)
		}
		model = b.TempDir()
		if err := v.Save(model); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	cpu0 := cputime.Process()
	for i := 0; i < b.N; i++ {
		var stdout, stderr bytes.Buffer
		if err := run([]string{"--model", model, "--in", in, "--out", filepath.Join(dir, "out.arrow")}, &stdout, &stderr); err != nil {
			b.Fatal(err)
		}
	}
	captions := float64(b.N * len(rows) * 5)
	b.ReportMetric(captions/b.Elapsed().Seconds(), "captions/s")
	if cpu := cputime.Process() - cpu0; cpu > 0 {
		// CPU cost per caption, and what it makes on 2 free cores: robust
		// when other work shares the machine.
		b.ReportMetric(2e9*captions/float64(cpu.Nanoseconds()), "captions/s@2cores")
	}
}
