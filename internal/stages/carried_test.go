package stages

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/clipline/clipline/internal/dataset/parquet/pqtest"
	"github.com/clipline/clipline/internal/dataset/webdataset/wdstest"
	"github.com/clipline/clipline/internal/stream"
)

// carried is what the test compares of a decoded stream, by row.
type carried struct {
	ids    []string
	tokens [][]int32 // the first caption's
	pixels [][]uint8
}

func readCarried(t *testing.T, path string) carried {
	t.Helper()
	r, err := stream.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var c carried
	for r.Next() {
		rec := r.Batch()
		ids, err := stream.Strings(rec, stream.ColImageID)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := stream.CaptionTokens(rec)
		if err != nil {
			t.Fatal(err)
		}
		pix, err := stream.Pixels(rec)
		if err != nil {
			t.Fatal(err)
		}
		for i := range ids {
			c.ids = append(c.ids, ids[i])
			c.tokens = append(c.tokens, slices.Clone(tok.Item(i, 0)))
			c.pixels = append(c.pixels, slices.Clone(pix.Row(i)))
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCarriedImages: the same images and first captions as image files
// (prepare synthetic), as a webdataset shard and as a Hugging Face-style
// parquet file go through the built tokenize and decode to the same tokens
// and pixels: the images inside the stream are the files' bytes, and the
// later stages read them (the url column passing through).
func TestCarriedImages(t *testing.T) {
	dir := t.TempDir()
	syn := filepath.Join(dir, "syn.arrow")
	run := func(name string, args ...string) {
		t.Helper()
		if _, errOut, code := stage(t, nil, name, args...); code != 0 {
			t.Fatalf("%s %s: status %d\n%s", name, strings.Join(args, " "), code, errOut)
		}
	}
	run("prepare", "synthetic", "--images", "6", "--seed", "4", "--render-dir", filepath.Join(dir, "img"), "--out", syn)
	r, err := stream.Open(syn)
	if err != nil {
		t.Fatal(err)
	}
	var ids, firsts []string
	var imgs [][]byte
	var members []wdstest.Member
	for r.Next() {
		rec := r.Batch()
		id, _ := stream.Strings(rec, stream.ColImageID)
		paths, _ := stream.Strings(rec, stream.ColImagePath)
		caps, _ := stream.StringLists(rec, stream.ColCaptions)
		for i := range id {
			b, err := os.ReadFile(paths[i])
			if err != nil {
				t.Fatal(err)
			}
			key := fmt.Sprintf("%05d", len(ids))
			ids, firsts, imgs = append(ids, id[i]), append(firsts, caps[i][0]), append(imgs, b)
			members = append(members,
				wdstest.Member{Name: key + filepath.Ext(paths[i]), Data: string(b)},
				wdstest.Member{Name: key + ".txt", Data: caps[i][0]},
				wdstest.Member{Name: key + ".json", Data: fmt.Sprintf(`{"key": %q, "url": "https://example.com/%s"}`, id[i], key)})
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if len(ids) != 6 {
		t.Fatalf("prepare synthetic: %d rows", len(ids))
	}
	shard := filepath.Join(dir, "00000.tar")
	wdstest.WriteShard(t, shard, false, members)
	pq := filepath.Join(dir, "pairs.parquet")
	pqtest.Write(t, pq, []arrow.Field{{Name: "image", Type: arrow.BinaryTypes.Binary}, {Name: "text", Type: arrow.BinaryTypes.String},
		{Name: "image_id", Type: arrow.BinaryTypes.String}}, []arrow.Array{pqtest.Binaries(imgs...), pqtest.Strings(firsts...), pqtest.Strings(ids...)})

	decoded := map[string]carried{}
	for name, prep := range map[string][]string{
		"files":      nil, // syn.arrow
		"webdataset": {"webdataset", shard},
		"parquet":    {"parquet", pq},
	} {
		p, tok, pix := filepath.Join(dir, name+".arrow"), filepath.Join(dir, name+".tok.arrow"), filepath.Join(dir, name+".pix.arrow")
		if prep == nil {
			p = syn
		} else {
			run("prepare", append(prep, "--out", p)...)
		}
		run("tokenize", "--model", "testdata/base-model", "--in", p, "--out", tok)
		run("decode", "--size", "32", "--in", tok, "--out", pix)
		decoded[name] = readCarried(t, pix)
	}
	want := decoded["files"]
	for _, name := range []string{"webdataset", "parquet"} {
		got := decoded[name]
		if !slices.Equal(got.ids, want.ids) || !slices.Equal(got.ids, ids) {
			t.Errorf("%s: ids %v, want %v", name, got.ids, want.ids)
			continue
		}
		for i := range ids {
			if !slices.Equal(got.tokens[i], want.tokens[i]) {
				t.Errorf("%s: row %d: the first caption's tokens differ", name, i)
			}
			if !bytes.Equal(got.pixels[i], want.pixels[i]) {
				t.Errorf("%s: row %d: pixels differ from decoding the file", name, i)
			}
		}
	}
	pr, err := stream.Open(filepath.Join(dir, "webdataset.pix.arrow"))
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	if !pr.Schema().HasField("url") {
		t.Errorf("decode dropped the url column: %v", pr.Schema())
	}
}
