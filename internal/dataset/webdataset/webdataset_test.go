package webdataset

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/dataset/webdataset/wdstest"
)

// scanAll returns every sample and the stats.
func scanAll(t *testing.T, shards []string, opts Options) ([]*Sample, Stats, error) {
	t.Helper()
	var got []*Sample
	st, err := Scan(shards, opts, func(s *Sample) error {
		got = append(got, s)
		return nil
	})
	return got, st, err
}

// img2datasetShard is a shard as img2dataset writes one, plus what
// webdataset ignores.
func img2datasetShard(t *testing.T) ([]wdstest.Member, []Sample) {
	jpg, pngData, webp := wdstest.Image(t, "jpeg", 3), wdstest.Image(t, "png", 5), wdstest.Image(t, "webp", 0)
	members := []wdstest.Member{
		{Name: "__meta__", Data: "ignored"},
		{Name: "000000000.jpg", Data: jpg},
		{Name: "000000000.txt", Data: "  a red square\n"},
		{Name: "000000000.json", Data: `{"key": "000000000", "url": "https://example.com/a.jpg", "caption": "not used: .txt wins", "width": 8, "status": "success"}`},
		{Name: "sub", Dir: true},
		{Name: "sub/000000001.PNG", Data: pngData},
		{Name: "sub/000000001.txt", Data: "a green circle"},
		{Name: "sub/000000001.cls", Data: "7"},
		{Name: ".hidden.txt", Data: "no key: ignored"},
		{Name: "000000002.webp", Data: webp},
		{Name: "000000002.json", Data: `{"key": 12, "caption": "a photo of a \u00e9clair"}`},
	}
	want := []Sample{
		{Key: "000000000", Members: []string{"000000000.jpg", "000000000.txt", "000000000.json"}, ID: "000000000",
			Caption: "a red square", URL: "https://example.com/a.jpg", Image: []byte(jpg), Ext: "jpg"},
		{Key: "sub/000000001", Members: []string{"000000001.PNG", "000000001.txt", "000000001.cls"}, ID: "sub/000000001",
			Caption: "a green circle", Image: []byte(pngData), Ext: "png"},
		{Key: "000000002", Members: []string{"000000002.webp", "000000002.json"}, ID: "12",
			Caption: "a photo of a éclair", Image: []byte(webp), Ext: "webp"},
	}
	return members, want
}

func TestScan(t *testing.T) {
	dir := t.TempDir()
	members, want := img2datasetShard(t)
	for _, gz := range []bool{false, true} {
		shard := filepath.Join(dir, "00000.tar")
		if gz {
			shard += ".gz"
		}
		wdstest.WriteShard(t, shard, gz, members)
		for _, images := range []bool{true, false} {
			got, st, err := scanAll(t, []string{shard}, Options{Images: images})
			if err != nil {
				t.Fatal(err)
			}
			if st != (Stats{Shards: 1, Samples: 3}) {
				t.Errorf("gz=%v images=%v: stats %+v", gz, images, st)
			}
			if len(got) != len(want) {
				t.Fatalf("gz=%v images=%v: %d samples, want %d", gz, images, len(got), len(want))
			}
			for i := range want {
				w := want[i]
				w.Shard, w.Index = shard, i
				if !images {
					w.Image = nil
				}
				if !reflect.DeepEqual(*got[i], w) {
					t.Errorf("gz=%v images=%v: sample %d:\n got %+v\nwant %+v", gz, images, i, *got[i], w)
				}
			}
		}
	}
}

// TestScanGNUTar reads shards that GNU tar wrote (plain and gzip), an
// archive writer independent of Go's, as tar files made by hand or by
// Python's tarfile (webdataset's writer) look.
func TestScanGNUTar(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Fatal("tar is not installed: Debian's tar is essential, so this machine is broken")
	}
	src := t.TempDir()
	jpg, pngData := wdstest.Image(t, "jpeg", 9), wdstest.Image(t, "png", 11)
	files := map[string]string{"k1.jpg": jpg, "k1.txt": "one", "k1.json": `{"key":"k1","url":"u1"}`, "k2.png": pngData, "k2.txt": "two\n"}
	for n, d := range files {
		if err := os.WriteFile(filepath.Join(src, n), []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	for _, flag := range []string{"-cf", "-czf"} {
		shard := filepath.Join(out, "shard"+flag+".tar")
		// Members in the order named: grouped by key, as webdataset writes them.
		cmd := exec.Command("tar", flag, shard, "-C", src, "k1.jpg", "k1.txt", "k1.json", "k2.png", "k2.txt")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("tar %s: %v\n%s", flag, err, b)
		}
		got, _, err := scanAll(t, []string{shard}, Options{Images: true})
		if err != nil {
			t.Fatal(err)
		}
		want := []Sample{
			{Shard: shard, Key: "k1", Members: []string{"k1.jpg", "k1.txt", "k1.json"}, ID: "k1", Caption: "one", URL: "u1", Image: []byte(jpg), Ext: "jpg"},
			{Index: 1, Shard: shard, Key: "k2", Members: []string{"k2.png", "k2.txt"}, ID: "k2", Caption: "two", Image: []byte(pngData), Ext: "png"},
		}
		if len(got) != 2 || !reflect.DeepEqual(*got[0], want[0]) || !reflect.DeepEqual(*got[1], want[1]) {
			t.Errorf("tar %s: got %+v", flag, got)
		}
	}
}

func TestBadSamples(t *testing.T) {
	jpg, pngData := wdstest.Image(t, "jpeg", 1), wdstest.Image(t, "png", 2)
	good := []wdstest.Member{{Name: "ok.jpg", Data: jpg}, {Name: "ok.txt", Data: "fine"}}
	cases := []struct {
		name    string
		members []wdstest.Member
		want    string // in the error, after "sample KEY (members): "
	}{
		{"no image", []wdstest.Member{{Name: "a.txt", Data: "x"}, {Name: "a.json", Data: "{}"}}, "a (a.txt, a.json): no image member"},
		{"no caption", []wdstest.Member{{Name: "a.jpg", Data: jpg}, {Name: "a.json", Data: `{"key": "a"}`}}, "a (a.jpg, a.json): no caption"},
		{"two images", []wdstest.Member{{Name: "a.jpg", Data: jpg}, {Name: "a.png", Data: pngData}, {Name: "a.txt", Data: "x"}}, "two images (a.jpg and a.png)"},
		{"repeated", []wdstest.Member{{Name: "a.jpg", Data: jpg}, {Name: "a.txt", Data: "x"}, {Name: "a.txt", Data: "y"}}, "member a.txt repeated"},
		{"empty caption", []wdstest.Member{{Name: "a.jpg", Data: jpg}, {Name: "a.txt", Data: " \n"}}, "empty caption"},
		{"bad utf8", []wdstest.Member{{Name: "a.jpg", Data: jpg}, {Name: "a.txt", Data: "\xff\xfe"}}, "not valid UTF-8"},
		{"bad json", []wdstest.Member{{Name: "a.jpg", Data: jpg}, {Name: "a.txt", Data: "x"}, {Name: "a.json", Data: "[1, 2]"}}, "a.json is not a JSON object"},
		{"not an image", []wdstest.Member{{Name: "a.jpg", Data: "<html>oops</html>"}, {Name: "a.txt", Data: "x"}}, `a.jpg is not an image file (it starts with "<html>oops</")`},
		{"empty image", []wdstest.Member{{Name: "a.png", Data: ""}, {Name: "a.txt", Data: "x"}}, "a.png is not an image file"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			shard := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".tar")
			wdstest.WriteShard(t, shard, false, append(append(append([]wdstest.Member{}, good...), c.members...), wdstest.Member{Name: "z.png", Data: pngData}, wdstest.Member{Name: "z.txt", Data: "last"}))
			for _, images := range []bool{false, true} {
				_, _, err := scanAll(t, []string{shard}, Options{Images: images})
				if err == nil {
					t.Fatalf("images=%v: no error", images)
				}
				for _, part := range []string{"webdataset " + shard + ": sample a (", c.want, "--skip-bad"} {
					if !strings.Contains(err.Error(), part) {
						t.Errorf("images=%v: error %q does not contain %q", images, err, part)
					}
				}
				var log bytes.Buffer
				got, st, err := scanAll(t, []string{shard}, Options{Images: images, SkipBad: true, Log: &log})
				if err != nil {
					t.Fatalf("images=%v, --skip-bad: %v", images, err)
				}
				if st.Bad != 1 || st.Samples != 3 || len(got) != 2 || got[0].ID != "ok" || got[1].ID != "z" || got[1].Index != 2 {
					t.Errorf("images=%v, --skip-bad: stats %+v, %d samples", images, st, len(got))
				}
				if !strings.Contains(log.String(), c.want) || !strings.HasSuffix(log.String(), ": skipped\n") {
					t.Errorf("images=%v, --skip-bad: log %q", images, log.String())
				}
			}
		})
	}
}

func TestDamagedShards(t *testing.T) {
	dir := t.TempDir()
	jpg := wdstest.Image(t, "jpeg", 4)
	full := filepath.Join(dir, "full.tar")
	wdstest.WriteShard(t, full, false, []wdstest.Member{{Name: "a.jpg", Data: jpg}, {Name: "a.txt", Data: "x"}, {Name: "b.jpg", Data: jpg}, {Name: "b.txt", Data: "y"}})
	data, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	// Cut inside b.jpg's data: its header is read, its data is short.
	cut := filepath.Join(dir, "cut.tar")
	padded := (len(jpg) + 511) / 512 * 512
	bData := 512 + padded + 2*512 + 512 // a.jpg, a.txt, b.jpg's header
	os.WriteFile(cut, data[:bData+10], 0o644)
	notTar := filepath.Join(dir, "not.tar")
	os.WriteFile(notTar, bytes.Repeat([]byte("x"), 1024), 0o644)
	split := filepath.Join(dir, "split.tar")
	wdstest.WriteShard(t, split, false, []wdstest.Member{{Name: "a.jpg", Data: jpg}, {Name: "a.txt", Data: "x"}, {Name: "b.jpg", Data: jpg}, {Name: "b.txt", Data: "y"}, {Name: "a.json", Data: "{}"}})
	for _, c := range []struct{ shard, want string }{
		{cut, "webdataset " + cut + ": member b.jpg: reading its data: unexpected EOF (a damaged or truncated shard)"},
		{notTar, "webdataset " + notTar + ": at the first member: reading the tar"},
		{split, "webdataset " + split + ": member a.json: key a appears again after other keys (first member a.jpg)"},
	} {
		for _, skip := range []bool{false, true} {
			_, _, err := scanAll(t, []string{c.shard}, Options{Images: true, SkipBad: skip})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s (skip-bad %v): error %v, want %q", c.shard, skip, err, c.want)
			}
		}
	}
}

func TestShards(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"00001.tar", "00000.tar", "00002.tar.gz", "00003.tgz", "00000.parquet", "00000_stats.json"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o644)
	}
	os.Mkdir(filepath.Join(dir, "nested.tar"), 0o755)
	extra := filepath.Join(t.TempDir(), "other.shard")
	os.WriteFile(extra, nil, 0o644)
	got, err := Shards([]string{extra, dir})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{extra}
	for _, n := range []string{"00000.tar", "00001.tar", "00002.tar.gz", "00003.tgz"} {
		want = append(want, filepath.Join(dir, n))
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Shards: %v, want %v", got, want)
	}
	empty := t.TempDir()
	if _, err := Shards([]string{empty}); err == nil || !strings.Contains(err.Error(), "no .tar, .tar.gz or .tgz files in directory "+empty) {
		t.Errorf("empty directory: %v", err)
	}
	if _, err := Shards([]string{filepath.Join(empty, "missing.tar")}); err == nil || !strings.Contains(err.Error(), "missing.tar") {
		t.Errorf("missing file: %v", err)
	}
}
