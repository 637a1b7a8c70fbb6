package metrics

import (
	"encoding/json"
	"fmt"
	"io"
)

// Scores are one direction's metrics as rank's JSON holds them, fractions
// in [0,1]. Queries and NoRelevant are for the table only: the JSON counts
// images and queries once for both directions (Summary).
type Scores struct {
	R1     float64 `json:"r1"`
	R5     float64 `json:"r5"`
	R10    float64 `json:"r10"`
	MRR    float64 `json:"mrr"`
	NDCG10 float64 `json:"ndcg10"`

	Queries    int `json:"-"` // queries averaged over
	NoRelevant int `json:"-"` // queries without any relevant item, left out
}

// Summary is one retrieval evaluation: rank's JSON output, report's input
// and each validation of train's metrics.jsonl. Recalls and RSum (the sum
// of the six recalls) are fractions; Images counts the gallery images,
// Queries the caption queries.
type Summary struct {
	T2I     Scores  `json:"t2i"`
	I2T     Scores  `json:"i2t"`
	RSum    float64 `json:"rsum"`
	Images  int     `json:"images"`
	Queries int     `json:"queries"`
}

// Summary is r over a gallery of images and the given caption queries.
func (r Result) Summary(images, queries int) Summary {
	return Summary{T2I: r.T2I.scores(), I2T: r.I2T.scores(), RSum: r.RSum(), Images: images, Queries: queries}
}

func (d Direction) scores() Scores {
	return Scores{R1: d.R1, R5: d.R5, R10: d.R10, MRR: d.MRR, NDCG10: d.NDCG10, Queries: d.Queries, NoRelevant: d.NoRelevant}
}

// JSON is s as rank writes it: indented, with a final newline.
func (s Summary) JSON() ([]byte, error) {
	js, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(js, '\n'), nil
}

// ParseSummary reads rank's JSON; a summary without images or queries is an
// error, since nothing was ranked.
func ParseSummary(js []byte) (Summary, error) {
	var s Summary
	if err := json.Unmarshal(js, &s); err != nil {
		return Summary{}, err
	}
	if s.Queries == 0 || s.Images == 0 {
		return Summary{}, fmt.Errorf("no images or queries were ranked")
	}
	return s, nil
}

// Table writes s for people: recalls in percent, MRR and NDCG@10 as
// fractions, each direction's query count, and the queries left out.
func (s Summary) Table(w io.Writer) {
	fmt.Fprintf(w, "%-12s %7s %7s %7s %7s %8s %9s\n", "", "R@1", "R@5", "R@10", "MRR", "NDCG@10", "queries")
	for _, r := range []struct {
		name string
		s    Scores
	}{{"text→image", s.T2I}, {"image→text", s.I2T}} {
		fmt.Fprintf(w, "%-12s %7.2f %7.2f %7.2f %7.4f %8.4f %9d\n", r.name, 100*r.s.R1, 100*r.s.R5, 100*r.s.R10, r.s.MRR, r.s.NDCG10, r.s.Queries)
		if r.s.NoRelevant > 0 {
			fmt.Fprintf(w, "  (%d %s queries have no relevant item and are left out)\n", r.s.NoRelevant, r.name)
		}
	}
	fmt.Fprintf(w, "rsum %.2f (recalls in %%; JSON has fractions)\n", 100*s.RSum)
}
