package results

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/clipline/clipline/internal/stream"
)

// Row is one query of a results stream, as Write wrote it.
type Row struct {
	Direction  string // "t2i" or "i2t"
	QueryID    string
	QueryText  string // t2i only
	QueryIndex int32
	// FirstRelevantRank is the 1-based rank of the best relevant item in
	// the whole gallery (not only the top K); 0 without a relevant item.
	FirstRelevantRank int32
	ResultIDs         []string
	ResultTexts       []string // i2t only
	ResultIndices     []int32
	Scores            []float32
	Relevant          []bool
}

// File is a results stream read whole.
type File struct {
	Rows       []Row
	Provenance []stream.Step // the queries' stream's stages, then rank's
}

// Read reads the results stream at path ("-" is stdin).
func Read(path string) (*File, error) {
	r, err := stream.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f := &File{}
	if f.Provenance, err = stream.Provenance(r.Schema()); err != nil {
		return nil, fmt.Errorf("%s: %w", r.Name(), err)
	}
	for r.Next() {
		if err := f.add(r.Batch()); err != nil {
			return nil, r.Errorf("%v", err)
		}
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *File) add(rec arrow.RecordBatch) error {
	col := func(name string) (arrow.Array, error) { return stream.Column(rec, name) }
	var cols [10]arrow.Array
	for i, name := range []string{"direction", "query_id", "query_text", "query_index", "first_relevant_rank",
		"result_ids", "result_texts", "result_indices", "scores", "relevant"} {
		c, err := col(name)
		if err != nil {
			return err
		}
		cols[i] = c
	}
	dir, ok1 := cols[0].(*array.String)
	qid, ok2 := cols[1].(*array.String)
	qtext, ok3 := cols[2].(*array.String)
	qidx, ok4 := cols[3].(*array.Int32)
	frr, ok5 := cols[4].(*array.Int32)
	lists := make([]*array.List, 5)
	ok := ok1 && ok2 && ok3 && ok4 && ok5
	for i := range lists {
		l, isList := cols[5+i].(*array.List)
		lists[i], ok = l, ok && isList
	}
	if !ok {
		return fmt.Errorf("not a rank --results stream (column types)")
	}
	ids, okIDs := lists[0].ListValues().(*array.String)
	texts, okTexts := lists[1].ListValues().(*array.String)
	idx, okIdx := lists[2].ListValues().(*array.Int32)
	scores, okSc := lists[3].ListValues().(*array.Float32)
	rel, okRel := lists[4].ListValues().(*array.Boolean)
	if !(okIDs && okTexts && okIdx && okSc && okRel) {
		return fmt.Errorf("not a rank --results stream (list types)")
	}
	for i := range int(rec.NumRows()) {
		row := Row{Direction: dir.Value(i), QueryID: qid.Value(i), QueryIndex: qidx.Value(i)}
		if qtext.IsValid(i) {
			row.QueryText = qtext.Value(i)
		}
		if frr.IsValid(i) {
			row.FirstRelevantRank = frr.Value(i)
		}
		from, to := lists[0].ValueOffsets(i)
		for j := int(from); j < int(to); j++ {
			row.ResultIDs = append(row.ResultIDs, ids.Value(j))
		}
		if lists[1].IsValid(i) {
			from, to := lists[1].ValueOffsets(i)
			for j := int(from); j < int(to); j++ {
				row.ResultTexts = append(row.ResultTexts, texts.Value(j))
			}
		}
		from, to = lists[2].ValueOffsets(i)
		row.ResultIndices = append(row.ResultIndices, idx.Int32Values()[from:to]...)
		from, to = lists[3].ValueOffsets(i)
		row.Scores = append(row.Scores, scores.Float32Values()[from:to]...)
		from, to = lists[4].ValueOffsets(i)
		for j := int(from); j < int(to); j++ {
			row.Relevant = append(row.Relevant, rel.Value(j))
		}
		f.Rows = append(f.Rows, row)
	}
	return nil
}
