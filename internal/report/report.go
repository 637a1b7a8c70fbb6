// Package report compares two retrieval evaluations (rank's JSON output)
// before and after fine-tuning: a readable table, a JSON report and a
// self-contained HTML report (galleries from rank --results, Recall@K and
// training curves as inline SVG).
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/clipline/clipline/internal/metrics"
)

// Report is out/default/report.json: both evaluations and the wall time.
type Report struct {
	ZeroShot  json.RawMessage `json:"zero_shot"`
	FineTuned json.RawMessage `json:"fine_tuned"`
	Seconds   float64         `json:"seconds"`
}

// LoadMetrics reads one rank JSON file, keeping its raw bytes so the report
// carries every field rank wrote, not only those this package knows.
func LoadMetrics(path string) (metrics.Summary, json.RawMessage, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return metrics.Summary{}, nil, fmt.Errorf("report: %w", err)
	}
	m, err := metrics.ParseSummary(raw)
	if err != nil {
		return metrics.Summary{}, nil, fmt.Errorf("report: %s: %w", path, err)
	}
	return m, json.RawMessage(strings.TrimSpace(string(raw))), nil
}

type row struct {
	name string
	b, a float64
}

// tableRows are the metrics the table and the HTML report compare.
func tableRows(before, after metrics.Summary) []row {
	return []row{
		{"t2i R@1", before.T2I.R1, after.T2I.R1},
		{"t2i R@5", before.T2I.R5, after.T2I.R5},
		{"t2i R@10", before.T2I.R10, after.T2I.R10},
		{"t2i MRR", before.T2I.MRR, after.T2I.MRR},
		{"i2t R@1", before.I2T.R1, after.I2T.R1},
		{"i2t R@5", before.I2T.R5, after.I2T.R5},
		{"i2t R@10", before.I2T.R10, after.I2T.R10},
		{"i2t MRR", before.I2T.MRR, after.I2T.MRR},
	}
}

// Table writes the before/after comparison in percentage points.
func Table(w io.Writer, before, after metrics.Summary) {
	rows := tableRows(before, after)
	fmt.Fprintf(w, "%-10s %10s %11s %9s\n", "metric", "zero-shot", "fine-tuned", "change")
	for _, r := range rows {
		fmt.Fprintf(w, "%-10s %9.1f%% %10.1f%% %+8.1f pp\n", r.name, 100*r.b, 100*r.a, 100*(r.a-r.b))
	}
	fmt.Fprintf(w, "(%d test images, %d caption queries)\n", after.Images, after.Queries)
}
