package web_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/serve/web"
)

// stubImage is one image of the stub index: a solid colour, so that an
// uploaded copy of it is found first by colour distance.
type stubImage struct {
	id       string
	rgb      [3]uint8
	captions []string
	png      []byte
}

type result struct {
	Rank     int      `json:"rank"`
	ImageID  string   `json:"image_id"`
	Score    float32  `json:"score"`
	Path     string   `json:"image_path"`
	Captions []string `json:"captions"`
}

// newStub serves the page with a stand-in for serve's API that answers the
// documented JSON (docs/serve.md), with a compare list, so the page's
// features are tested without a model. Text queries rank the images whose
// captions contain the text first; the compare list ranks them in reverse.
func newStub(t *testing.T) site {
	t.Helper()
	colours := [][3]uint8{{220, 40, 40}, {40, 160, 60}, {40, 70, 220}, {230, 200, 40}, {150, 60, 190}, {40, 190, 200}}
	names := []string{"red", "green", "blue", "yellow", "purple", "cyan"}
	dir := t.TempDir()
	var imgs []stubImage
	for i, c := range colours {
		m := image.NewRGBA(image.Rect(0, 0, 64, 64))
		for p := 0; p < len(m.Pix); p += 4 {
			m.Pix[p], m.Pix[p+1], m.Pix[p+2], m.Pix[p+3] = c[0], c[1], c[2], 255
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, m); err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, stubImage{
			id: fmt.Sprintf("img-%d", i), rgb: c, png: buf.Bytes(),
			captions: []string{"a " + names[i] + " square", "a flat " + names[i] + " picture"},
		})
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("img-%d.png", i)), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	byID := map[string]*stubImage{}
	for i := range imgs {
		byID[imgs[i].id] = &imgs[i]
	}
	answer := func(w http.ResponseWriter, order []int, k int, extra map[string]any) {
		list := func(order []int) []result {
			var out []result
			for r, i := range order[:min(k, len(order))] {
				out = append(out, result{Rank: r + 1, ImageID: imgs[i].id, Score: 1 - 0.125*float32(r),
					Path: imgs[i].id + ".png", Captions: imgs[i].captions})
			}
			return out
		}
		body := map[string]any{"results": list(order), "timings": map[string]float64{"encode_ms": 1.5, "search_ms": 0.1}}
		for key, v := range extra {
			body[key] = v
		}
		if c, ok := extra["compare"].([]int); ok {
			body["compare"] = list(c)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(body)
	}
	fail := func(w http.ResponseWriter, code int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]string{"error": msg})
	}
	// nearest orders the images by colour distance to c.
	nearest := func(c [3]uint8) []int {
		order := []int{0, 1, 2, 3, 4, 5}
		dist := func(i int) int {
			d := 0
			for j := range 3 {
				x := int(imgs[i].rgb[j]) - int(c[j])
				d += x * x
			}
			return d
		}
		slices.SortStableFunc(order, func(a, b int) int { return dist(a) - dist(b) })
		return order
	}

	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(web.FS))
	mux.HandleFunc("GET /v1/images/{id}", func(w http.ResponseWriter, r *http.Request) {
		im, ok := byID[r.PathValue("id")]
		if !ok {
			fail(w, http.StatusNotFound, "unknown image_id")
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Write(im.png)
	})
	mux.HandleFunc("GET /v1/info", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"model":   map[string]any{"source": "stub/fine-tuned", "dim": 3},
			"index":   map[string]any{"kind": "images", "count": len(imgs), "dim": 3},
			"compare": map[string]any{"model": map[string]any{"source": "stub/base", "dim": 3}},
		})
	})
	mux.HandleFunc("POST /v1/search", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Text    string `json:"text"`
			ImageID string `json:"image_id"`
			TopK    int    `json:"top_k"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			fail(w, http.StatusBadRequest, "bad JSON: "+err.Error())
			return
		}
		switch {
		case req.ImageID != "":
			im, ok := byID[req.ImageID]
			if !ok {
				fail(w, http.StatusNotFound, fmt.Sprintf("unknown image_id %q", req.ImageID))
				return
			}
			answer(w, nearest(im.rgb), req.TopK, nil)
		case req.Text != "":
			var hit, rest, relevant []int
			var ids []string
			for i, im := range imgs {
				if slices.ContainsFunc(im.captions, func(c string) bool { return strings.Contains(c, req.Text) }) {
					hit = append(hit, i)
				} else {
					rest = append(rest, i)
				}
				if slices.Contains(im.captions, req.Text) {
					relevant = append(relevant, i)
					ids = append(ids, im.id)
				}
			}
			order := append(hit, rest...)
			compare := slices.Clone(order)
			slices.Reverse(compare)
			extra := map[string]any{"compare": compare}
			if len(ids) > 0 {
				first := func(order []int) int { return slices.Index(order, relevant[0]) + 1 }
				extra["relevant"] = ids
				extra["first_relevant_rank"] = map[string]int{"results": first(order), "compare": first(compare)}
			}
			answer(w, order, req.TopK, extra)
		default:
			fail(w, http.StatusBadRequest, "give text or image_id")
		}
	})
	mux.HandleFunc("POST /search/image", func(w http.ResponseWriter, r *http.Request) {
		k, err := strconv.Atoi(r.URL.Query().Get("top_k"))
		if err != nil {
			fail(w, http.StatusBadRequest, "top_k: "+err.Error())
			return
		}
		f, _, err := r.FormFile("file")
		if err != nil {
			fail(w, http.StatusBadRequest, "multipart field file: "+err.Error())
			return
		}
		defer f.Close()
		m, _, err := image.Decode(f)
		if err != nil {
			fail(w, http.StatusBadRequest, "not an image: "+err.Error())
			return
		}
		c := color.RGBAModel.Convert(m.At(0, 0)).(color.RGBA)
		answer(w, nearest([3]uint8{c.R, c.G, c.B}), k, nil)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return site{
		url: ts.URL, query: "a blue square", first: "img-2",
		upload: filepath.Join(dir, "img-4.png"), uploadID: "img-4", compare: true,
		count: len(imgs), model: "stub/fine-tuned", compareModel: "stub/base",
	}
}
