package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"strings"

	"github.com/clipline/clipline/internal/stream"
)

//go:embed report.html.tmpl
var pageSource string

var pageTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct":   func(v float64) string { return fmt.Sprintf("%.1f%%", v) },
	"pp":    func(v float64) string { return fmt.Sprintf("%+.1f pp", v) },
	"score": func(v float32) string { return fmt.Sprintf("%.3f", v) },
	"secs": func(v float64) string {
		if v >= 60 {
			return fmt.Sprintf("%d min %02d s", int(v)/60, int(v)%60)
		}
		return fmt.Sprintf("%.1f s", v)
	},
	"step": func(s stream.Step) string { return strings.Join(append([]string{s.Stage}, s.Args...), " ") },
	"rank": func(r int) string {
		if r <= 0 {
			return "–"
		}
		return fmt.Sprint(r)
	},
}).Parse(pageSource))
