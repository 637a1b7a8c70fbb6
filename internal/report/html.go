package report

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/clipline/clipline/internal/imageproc"
	"github.com/clipline/clipline/internal/metrics"
	"github.com/clipline/clipline/internal/results"
	"github.com/clipline/clipline/internal/stream"
	"github.com/clipline/clipline/internal/train"
)

// Gallery sizes and thumbnails. Thumbnails are small JPEGs inlined once per
// image shown, so the default's report stays well under 5 MB.
const (
	SampleQueries = 8 // evenly spaced test captions
	Extremes      = 5 // largest wins and largest losses each
	SampleImages  = 6 // image→text rows
	TopImages     = 5
	TopCaptions   = 3
	MaxK          = 10 // Recall@K for K = 1..MaxK
	thumbWidth    = 80
	thumbQuality  = 80
)

// HTMLInput is what the HTML report is made of.
type HTMLInput struct {
	ZeroShot, FineTuned metrics.Summary
	// Before and After are rank --results of the zero-shot and fine-tuned
	// models on the same queries, with top K >= TopImages.
	Before, After *results.File
	Images        *Images // the thumbnails' images, by image_id
	RunDir        string  // train's output directory; "" leaves the curves out
	Seconds       float64 // the run's wall time (0: unknown)
}

// Page is the report's content, built before rendering (tests check it).
type Page struct {
	BaseModel  string
	Device     string
	Seconds    float64
	TrainSec   float64
	Provenance []stream.Step
	Config     string
	Table      []TableRow
	Recall     []template.HTML // SVG charts
	Curves     []template.HTML
	T2I        []T2IRow
	I2T        []I2TRow
}

// TableRow is one metric before and after, in percent.
type TableRow struct {
	Name                  string
	Before, After, Change float64
}

// Hit is one retrieved item: an image (Src) or a caption (Text).
type Hit struct {
	ID       string
	Src      template.URL
	Text     string
	Rank     int
	Score    float32
	Relevant bool
}

// T2IRow is a caption query with its top images before and after.
type T2IRow struct {
	Kind          string // "sample", "win" or "loss"
	Index         int    // query_index
	Caption       string
	BeforeRank    int // first relevant rank
	AfterRank     int
	Before, After []Hit
}

// I2TRow is an image query with its top captions before and after.
type I2TRow struct {
	Index         int
	ID            string
	Src           template.URL
	BeforeRank    int
	AfterRank     int
	Before, After []Hit
}

// BuildPage joins the two results, picks the gallery rows and draws the
// charts; thumbnails are made from Images.
func BuildPage(in HTMLInput) (*Page, error) {
	p := &Page{Seconds: in.Seconds, Provenance: in.After.Provenance}
	for _, r := range tableRows(in.ZeroShot, in.FineTuned) {
		p.Table = append(p.Table, TableRow{r.name, 100 * r.b, 100 * r.a, 100 * (r.a - r.b)})
	}
	before, err := byQuery(in.Before)
	if err != nil {
		return nil, err
	}
	after, err := byQuery(in.After)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"t2i", "i2t"} {
		if len(before[d]) != len(after[d]) {
			return nil, fmt.Errorf("report: the results hold %d and %d %s queries: not the same test set", len(before[d]), len(after[d]), d)
		}
		for i := range before[d] {
			if before[d][i].QueryID != after[d][i].QueryID || before[d][i].QueryText != after[d][i].QueryText {
				return nil, fmt.Errorf("report: %s query %d is %q in one results file and %q in the other", d, i, before[d][i].QueryID, after[d][i].QueryID)
			}
			if len(before[d][i].ResultIDs) < TopCaptions || d == "t2i" && len(before[d][i].ResultIDs) < min(TopImages, in.Images.Len()) {
				return nil, fmt.Errorf("report: the results keep %d items per query; rank them with --top-k %d or more", len(before[d][i].ResultIDs), TopImages)
			}
		}
	}
	thumbs := &thumbnails{images: in.Images, cache: map[string]template.URL{}}
	if p.T2I, err = t2iRows(before["t2i"], after["t2i"], thumbs); err != nil {
		return nil, err
	}
	if p.I2T, err = i2tRows(before["i2t"], after["i2t"], thumbs); err != nil {
		return nil, err
	}
	dirTitle := map[string]string{"t2i": "text → image", "i2t": "image → text"}
	for _, d := range []string{"t2i", "i2t"} {
		p.Recall = append(p.Recall, template.HTML(Chart{
			Title: "Recall@K, " + dirTitle[d], XLabel: "K", YLabel: "recall", YMin: 0, YMax: 1,
			Series: []Series{recallSeries("zero-shot", "#888", before[d]), recallSeries("fine-tuned", "#1f6fd1", after[d])},
		}.SVG()))
	}
	if in.RunDir != "" {
		if err := p.addRun(in.RunDir); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// byQuery splits a results file by direction, each in query_index order.
func byQuery(f *results.File) (map[string][]results.Row, error) {
	m := map[string][]results.Row{}
	for _, r := range f.Rows {
		if r.Direction != "t2i" && r.Direction != "i2t" {
			return nil, fmt.Errorf("report: results direction %q", r.Direction)
		}
		m[r.Direction] = append(m[r.Direction], r)
	}
	for d, rows := range m {
		slices.SortFunc(rows, func(a, b results.Row) int { return int(a.QueryIndex - b.QueryIndex) })
		for i, r := range rows {
			if int(r.QueryIndex) != i {
				return nil, fmt.Errorf("report: %s results miss query %d", d, i)
			}
		}
	}
	return m, nil
}

// RecallAtK is the fraction of queries with a relevant item whose first
// relevant rank is at most K, for K = 1..MaxK (rank's Recall@K).
func RecallAtK(rows []results.Row) []float64 {
	out := make([]float64, MaxK)
	n := 0
	for _, r := range rows {
		if r.FirstRelevantRank <= 0 {
			continue
		}
		n++
		for k := int(r.FirstRelevantRank); k <= MaxK; k++ {
			out[k-1]++
		}
	}
	for i := range out {
		out[i] /= float64(max(n, 1))
	}
	return out
}

func recallSeries(name, color string, rows []results.Row) Series {
	s := Series{Name: name, Color: color, Y: RecallAtK(rows)}
	for k := range MaxK {
		s.X = append(s.X, float64(k+1))
	}
	return s
}

// pick chooses the t2i rows: SampleQueries evenly spaced, then the Extremes
// largest wins and losses in first relevant rank (ties: the earlier query),
// each query at most once. Queries without a relevant item are left out.
func pick(before, after []results.Row) (kinds []string, idx []int) {
	seen := map[int]bool{}
	var ok []int
	for i := range before {
		if before[i].FirstRelevantRank > 0 && after[i].FirstRelevantRank > 0 {
			ok = append(ok, i)
		}
	}
	for j := range min(SampleQueries, len(ok)) {
		i := ok[j*len(ok)/min(SampleQueries, len(ok))]
		seen[i] = true
		kinds, idx = append(kinds, "sample"), append(idx, i)
	}
	gain := func(i int) int { return int(before[i].FirstRelevantRank - after[i].FirstRelevantRank) }
	for _, kind := range []string{"win", "loss"} {
		sign := 1
		if kind == "loss" {
			sign = -1
		}
		var cand []int
		for _, i := range ok {
			if !seen[i] && sign*gain(i) > 0 {
				cand = append(cand, i)
			}
		}
		slices.SortStableFunc(cand, func(a, b int) int { return sign*gain(b) - sign*gain(a) })
		for _, i := range cand[:min(Extremes, len(cand))] {
			seen[i] = true
			kinds, idx = append(kinds, kind), append(idx, i)
		}
	}
	return kinds, idx
}

func t2iRows(before, after []results.Row, th *thumbnails) ([]T2IRow, error) {
	kinds, idx := pick(before, after)
	var rows []T2IRow
	for j, i := range idx {
		b, a := before[i], after[i]
		row := T2IRow{Kind: kinds[j], Index: i, Caption: b.QueryText, BeforeRank: int(b.FirstRelevantRank), AfterRank: int(a.FirstRelevantRank)}
		var err error
		if row.Before, err = hits(b, TopImages, th); err != nil {
			return nil, err
		}
		if row.After, err = hits(a, TopImages, th); err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func i2tRows(before, after []results.Row, th *thumbnails) ([]I2TRow, error) {
	n := min(SampleImages, len(before))
	var rows []I2TRow
	for j := range n {
		i := j * len(before) / n
		b, a := before[i], after[i]
		src, err := th.get(b.QueryID)
		if err != nil {
			return nil, err
		}
		row := I2TRow{Index: i, ID: b.QueryID, Src: src, BeforeRank: int(b.FirstRelevantRank), AfterRank: int(a.FirstRelevantRank)}
		if row.Before, err = hits(b, TopCaptions, nil); err != nil {
			return nil, err
		}
		if row.After, err = hits(a, TopCaptions, nil); err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// hits is r's best n results; images (th != nil) with thumbnails.
func hits(r results.Row, n int, th *thumbnails) ([]Hit, error) {
	var out []Hit
	for j := range min(n, len(r.ResultIDs)) {
		h := Hit{ID: r.ResultIDs[j], Rank: j + 1, Score: r.Scores[j], Relevant: r.Relevant[j]}
		if th != nil {
			src, err := th.get(h.ID)
			if err != nil {
				return nil, err
			}
			h.Src = src
		} else if j < len(r.ResultTexts) {
			h.Text = r.ResultTexts[j]
		}
		out = append(out, h)
	}
	return out, nil
}

// thumbnails makes each image's data URI once.
type thumbnails struct {
	images *Images
	cache  map[string]template.URL
}

func (t *thumbnails) get(id string) (template.URL, error) {
	if u, ok := t.cache[id]; ok {
		return u, nil
	}
	var jpg []byte
	var err error
	if data, ok := t.images.Bytes[id]; ok {
		jpg, err = imageproc.ThumbnailBytes(data, thumbWidth, thumbQuality)
	} else if path, ok := t.images.Paths[id]; ok {
		jpg, err = imageproc.Thumbnail(path, thumbWidth, thumbQuality)
	} else {
		return "", fmt.Errorf("report: image %q is not in --paths-from", id)
	}
	if err != nil {
		return "", fmt.Errorf("report: image %q: %w", id, err)
	}
	u := template.URL("data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(jpg))
	t.cache[id] = u
	return u, nil
}

// addRun reads train's output directory: metrics.jsonl for the curves, the
// effective configuration and the trainer state for the header.
func (p *Page) addRun(dir string) error {
	cfg, err := os.ReadFile(filepath.Join(dir, "final", train.ConfigFile))
	if err != nil {
		return fmt.Errorf("report: run %s: %w", dir, err)
	}
	p.Config = string(cfg)
	var keys struct {
		Model  string `yaml:"model_name_or_path"`
		Device string `yaml:"device"`
	}
	if err := yaml.Unmarshal(cfg, &keys); err != nil {
		return fmt.Errorf("report: run %s: %s: %w", dir, train.ConfigFile, err)
	}
	p.BaseModel, p.Device = keys.Model, keys.Device
	if st, err := train.RunState(dir); err == nil && st.BaseModel != "" {
		p.BaseModel = st.BaseModel
	}
	recs, err := readRecords(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		return err
	}
	var loss, lr, norm, t2i, i2t Series
	for _, r := range recs {
		x := float64(r.Step)
		p.TrainSec = max(p.TrainSec, r.ElapsedSec)
		for _, v := range []struct {
			s *Series
			y *float64
		}{{&loss, r.Loss}, {&lr, r.LR}, {&norm, r.GradNorm}} {
			if v.y != nil {
				v.s.X, v.s.Y = append(v.s.X, x), append(v.s.Y, *v.y)
			}
		}
		if r.Eval != nil {
			t2i.X, t2i.Y = append(t2i.X, x), append(t2i.Y, r.Eval.T2I.R1)
			i2t.X, i2t.Y = append(i2t.X, x), append(i2t.Y, r.Eval.I2T.R1)
		}
	}
	loss.Name, loss.Color = "loss", "#c0392b"
	lr.Name, lr.Color = "learning rate", "#8e44ad"
	norm.Name, norm.Color = "grad norm", "#16a085"
	t2i.Name, t2i.Color = "t2i R@1", "#1f6fd1"
	i2t.Name, i2t.Color = "i2t R@1", "#e67e22"
	for _, c := range []Chart{
		{Title: "Training loss", XLabel: "step", YLabel: "loss", Series: []Series{loss}},
		{Title: "Learning rate", XLabel: "step", YLabel: "learning rate", Series: []Series{lr}},
		{Title: "Gradient norm", XLabel: "step", YLabel: "grad norm", Series: []Series{norm}},
		{Title: "Validation R@1", XLabel: "step", YLabel: "R@1", YMin: 0, YMax: 1, Series: []Series{t2i, i2t}},
	} {
		p.Curves = append(p.Curves, template.HTML(c.SVG()))
	}
	return nil
}

func readRecords(path string) ([]train.Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer f.Close()
	var recs []train.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var r train.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("report: %s:%d: %w", path, line, err)
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("report: %s: %w", path, err)
	}
	return recs, nil
}

// WriteHTML renders the page as one self-contained HTML file.
func (p *Page) WriteHTML(w io.Writer) error { return pageTemplate.Execute(w, p) }
