package synthetic

import (
	"bytes"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/dataset"
)

func cfg(d Domain, n int, dir string) Config {
	c := Defaults()
	c.Domain, c.Images, c.ImageDir, c.Seed = d, n, dir, 42
	return c
}

func TestDeterministicBytes(t *testing.T) {
	for _, d := range []Domain{General, Scenes} {
		t.Run(string(d), func(t *testing.T) {
			dirA, dirB := t.TempDir(), t.TempDir()
			rowsA, stA, err := Generate(cfg(d, 40, dirA))
			if err != nil {
				t.Fatal(err)
			}
			rowsB, stB, err := Generate(cfg(d, 40, dirB))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(stA, stB) {
				t.Fatalf("stats differ: %+v vs %+v", stA, stB)
			}
			for i := range rowsA {
				a, b := rowsA[i], rowsB[i]
				if a.ImageID != b.ImageID || a.Split != b.Split || !reflect.DeepEqual(a.Captions, b.Captions) {
					t.Fatalf("row %d differs: %+v vs %+v", i, a, b)
				}
				if filepath.Base(a.ImagePath) != filepath.Base(b.ImagePath) {
					t.Fatalf("row %d file names differ", i)
				}
				ba, _ := os.ReadFile(a.ImagePath)
				bb, _ := os.ReadFile(b.ImagePath)
				if len(ba) == 0 || !bytes.Equal(ba, bb) {
					t.Fatalf("row %d: image bytes differ between runs", i)
				}
			}
			// A different seed gives a different dataset.
			c := cfg(d, 40, "")
			c.Seed = 43
			other, _, _ := Plan(c)
			if other[0].Key == rowsA[0].Captions[0] || reflect.DeepEqual(captionsOf(other), captionsOfRows(rowsA)) {
				t.Fatal("seed has no effect")
			}
		})
	}
}

func captionsOf(s []Scene) [][]string {
	var out [][]string
	for _, x := range s {
		out = append(out, x.Captions)
	}
	return out
}

func captionsOfRows(rs []dataset.Row) [][]string {
	var out [][]string
	for _, x := range rs {
		out = append(out, x.Captions)
	}
	return out
}

// Worker count must not change output (per-image generators).
func TestWorkersDoNotMatter(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	c := cfg(Scenes, 24, dirA)
	c.Workers = 1
	rowsA, _, err := Generate(c)
	if err != nil {
		t.Fatal(err)
	}
	c.ImageDir, c.Workers = dirB, 5
	rowsB, _, err := Generate(c)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rowsA {
		ba, _ := os.ReadFile(rowsA[i].ImagePath)
		bb, _ := os.ReadFile(rowsB[i].ImagePath)
		if !bytes.Equal(ba, bb) {
			t.Fatalf("image %d depends on worker count", i)
		}
	}
}

func TestSplitsAndCaptions(t *testing.T) {
	c := cfg(Scenes, 200, "")
	c.ValFrac, c.TestFrac = 0.1, 0.15
	scenes, st, err := Plan(c)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"train": 150, "val": 20, "test": 30}
	if !reflect.DeepEqual(st.Splits, want) {
		t.Fatalf("splits %v, want %v", st.Splits, want)
	}
	got := map[string]int{}
	for _, s := range scenes {
		got[s.Split]++
		if len(s.Captions) != CaptionsPerImage {
			t.Fatalf("%s has %d captions", s.ID, len(s.Captions))
		}
		seen := map[string]bool{}
		for _, cp := range s.Captions {
			if seen[cp] {
				t.Fatalf("%s repeats caption %q", s.ID, cp)
			}
			seen[cp] = true
			if cp != strings.TrimSpace(cp) || strings.Contains(cp, "  ") {
				t.Fatalf("%s: untidy caption %q", s.ID, cp)
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("counted %v", got)
	}
	// No val/test requested: everything is train.
	c.ValFrac, c.TestFrac = 0, 0
	_, st, _ = Plan(c)
	if st.Splits["train"] != 200 || len(st.Splits) != 1 {
		t.Fatalf("splits %v", st.Splits)
	}
}

// At the size the pipeline uses, every image has its own attribute set and no
// caption is repeated verbatim under another image of its split, so
// retrieval has one right answer per caption.
func TestUniqueDescriptions(t *testing.T) {
	for _, d := range []Domain{General, Scenes} {
		c := cfg(d, 3000, "")
		scenes, st, err := Plan(c)
		if err != nil {
			t.Fatal(err)
		}
		if st.DupKeys != 0 || st.DupCaptions != 0 {
			t.Errorf("%s: %d repeated keys, %d repeated captions", d, st.DupKeys, st.DupCaptions)
		}
		keys := map[string]string{}
		for _, s := range scenes {
			if prev, ok := keys[s.Key]; ok {
				t.Fatalf("%s: %s and %s share key %q", d, prev, s.ID, s.Key)
			}
			keys[s.Key] = s.ID
		}
		if d == Scenes {
			for _, k := range []Kind{KindPair, KindCount, KindRow} {
				if st.Kinds[k] < 500 {
					t.Errorf("only %d %s scenes of 3000", st.Kinds[k], k)
				}
			}
		}
	}
	// Beyond the general domain's attribute space (10*9*2*5*5 = 4500),
	// repeats are unavoidable but stay out of a split where possible.
	_, st, err := Plan(cfg(General, 5000, ""))
	if err != nil {
		t.Fatal(err)
	}
	if st.DupKeys < 500 || st.DupKeysSplit > st.DupKeys {
		t.Errorf("5000 general images: %d repeated keys (%d within a split)", st.DupKeys, st.DupKeysSplit)
	}
}

// Every general caption names all five attributes, whatever the template.
func TestGeneralCaptionsNameEveryAttribute(t *testing.T) {
	scenes, _, err := Plan(cfg(General, 300, ""))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scenes {
		o := s.Objects[0]
		for _, cp := range s.Captions {
			if !strings.Contains(cp, colours[o.Colour].name) ||
				!containsAny(cp, nouns(o.Shape)) ||
				!containsAny(cp, sizes[s.Size].names) ||
				!containsAny(cp, positionWords(s.Position)) ||
				!containsAny(cp, backgrounds[s.Background].names) {
				t.Fatalf("%s (%s): caption %q misses an attribute", s.ID, s.Key, cp)
			}
		}
	}
}

// Scenes captions name every distinct object's colour and shape.
func TestScenesCaptionsNameObjects(t *testing.T) {
	scenes, _, err := Plan(cfg(Scenes, 300, ""))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scenes {
		for _, cp := range s.Captions {
			for _, o := range s.Objects {
				if !strings.Contains(cp, colours[o.Colour].name) || !containsAny(cp, nouns(o.Shape)) {
					t.Fatalf("%s (%s): caption %q misses %s", s.ID, s.Key, cp, objKey(o))
				}
				if o.Texture != solid && !containsAny(cp, append(textures[o.Texture].pre, textures[o.Texture].post...)) {
					t.Fatalf("%s: caption %q misses the texture of %s", s.ID, cp, objKey(o))
				}
			}
			if s.Kind == KindCount && !containsAny(cp, countWords[s.Count]) {
				t.Fatalf("%s: caption %q misses the count %d", s.ID, cp, s.Count)
			}
		}
	}
}

func nouns(shape int) []string {
	var out []string
	for _, w := range shapes[shape].names {
		out = append(out, w.one, w.many)
	}
	return out
}

func positionWords(p int) []string {
	var out []string
	for _, n := range positions[p].names {
		out = append(out, n[strings.LastIndex(n, " ")+1:])
	}
	return out
}

func containsAny(s string, subs []string) bool {
	for _, x := range subs {
		if x != "" && strings.Contains(s, x) {
			return true
		}
	}
	return false
}

func TestFilesDecodeWithDeclaredFormatAndSize(t *testing.T) {
	dir := t.TempDir()
	c := cfg(Scenes, 30, dir)
	rows, st, err := Generate(c)
	if err != nil {
		t.Fatal(err)
	}
	if st.JPEG == 0 || st.JPEG == 30 {
		t.Fatalf("want both PNG and JPEG, got %d JPEG of 30", st.JPEG)
	}
	scenes, _, _ := Plan(c)
	sizes := map[[2]int]bool{}
	for i, r := range rows {
		if !filepath.IsAbs(r.ImagePath) {
			t.Fatalf("path %s not absolute", r.ImagePath)
		}
		f, err := os.Open(r.ImagePath)
		if err != nil {
			t.Fatal(err)
		}
		img, format, err := image.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", r.ImagePath, err)
		}
		wantFmt := "png"
		if scenes[i].JPEG {
			wantFmt = "jpeg"
		}
		if format != wantFmt || !strings.HasSuffix(r.ImagePath, map[string]string{"png": ".png", "jpeg": ".jpg"}[format]) {
			t.Fatalf("%s decoded as %s", r.ImagePath, format)
		}
		b := img.Bounds()
		if b.Dx() != scenes[i].Width || b.Dy() != scenes[i].Height || b.Dx() < 160 || b.Dx() > 320 || b.Dy() < 160 || b.Dy() > 320 {
			t.Fatalf("%s is %v", r.ImagePath, b)
		}
		sizes[[2]int{b.Dx(), b.Dy()}] = true
	}
	if len(sizes) < 20 {
		t.Fatalf("only %d distinct sizes in 30 images", len(sizes))
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, "*.tmp*")); len(tmps) > 0 {
		t.Fatalf("temporary files left: %v", tmps)
	}
}

// Objects stay in the central square (what decode's center crop keeps):
// outside it, a rendered image equals its background alone.
func TestObjectsInsideCentralSquare(t *testing.T) {
	for _, d := range []Domain{General, Scenes} {
		scenes, _, _ := Plan(cfg(d, 200, ""))
		for i := range scenes {
			s := scenes[i]
			full := Render(&s)
			s.Objects = nil
			bg := Render(&s)
			side := min(s.Width, s.Height)
			x0, y0 := (s.Width-side)/2, (s.Height-side)/2
			inside := image.Rect(x0, y0, x0+side, y0+side)
			changed := 0
			for y := 0; y < s.Height; y++ {
				for x := 0; x < s.Width; x++ {
					if image.Pt(x, y).In(inside) {
						continue
					}
					o := full.PixOffset(x, y)
					if !bytes.Equal(full.Pix[o:o+4], bg.Pix[o:o+4]) {
						changed++
					}
				}
			}
			if changed > 0 {
				t.Fatalf("%s: %d pixels drawn outside the central square", s.ID, changed)
			}
			if bytes.Equal(full.Pix, bg.Pix) {
				t.Fatalf("%s: nothing drawn", s.ID)
			}
		}
	}
}

// The shapes must be tellable apart at low resolution: rasterised at 24x24,
// every pair of silhouettes differs in a good share of pixels, each fits the
// unit disc, and each covers a reasonable part of it.
func TestShapesDistinctAndBounded(t *testing.T) {
	const n = 24
	masks := make([][]bool, len(shapes))
	for k, sh := range shapes {
		m := make([]bool, n*n)
		area := 0
		for i := range m {
			x := (float64(i%n)+0.5)/n*2 - 1
			y := (float64(i/n)+0.5)/n*2 - 1
			m[i] = sh.sdf(x, y) < 0
			if m[i] {
				area++
			}
		}
		frac := float64(area) / (math.Pi / 4 * n * n)
		if !(frac >= 0.25 && frac <= 0.9) {
			t.Errorf("%s covers %.2f of the unit disc", sh.names[0].one, frac)
		}
		for a := 0.0; a < 2*math.Pi; a += 0.05 {
			if d := sh.sdf(1.02*math.Cos(a), 1.02*math.Sin(a)); !(d > 0) {
				t.Fatalf("%s reaches outside the unit disc at angle %.2f", sh.names[0].one, a)
			}
		}
		masks[k] = m
	}
	for i := range masks {
		for j := i + 1; j < len(masks); j++ {
			inter, union := 0, 0
			for p := range masks[i] {
				if masks[i][p] && masks[j][p] {
					inter++
				}
				if masks[i][p] || masks[j][p] {
					union++
				}
			}
			if iou := float64(inter) / float64(union); !(iou <= 0.8) {
				t.Errorf("%s and %s overlap too much (IoU %.2f)", shapes[i].names[0].one, shapes[j].names[0].one, iou)
			}
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for name, c := range map[string]Config{
		"domain":  {Domain: "faces", Images: 10},
		"fracs":   {ValFrac: 0.5, TestFrac: 0.5, Images: 10},
		"negfrac": {ValFrac: -0.1, Images: 10},
		"sizes":   {MinSize: 300, MaxSize: 200, Images: 10},
		"images":  {Images: -1},
	} {
		if _, _, err := Plan(c); err == nil {
			t.Errorf("%s: accepted %+v", name, c)
		}
	}
	if _, _, err := Generate(Config{Images: 3}); err == nil || !strings.Contains(err.Error(), "image directory") {
		t.Errorf("no image dir: %v", err)
	}
}

func TestArticle(t *testing.T) {
	if a("orange circle") != "an orange circle" || a("red circle") != "a red circle" {
		t.Fatal(a("orange circle"), a("red circle"))
	}
}
