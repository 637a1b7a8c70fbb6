package stream

import (
	"fmt"
	"maps"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// TransformSpec describes a stage that adds or replaces columns row by row
// and may drop rows (tokenize, decode, embed).
type TransformSpec struct {
	Stage   string   // recorded in provenance
	Args    []string // recorded in provenance (usually os.Args[1:])
	Out     string   // output path; "" or "-" is Options.Stdout
	Options Options

	// Fields are the columns Fn returns, in order: each replaces the
	// same-named input column or is appended. Other columns pass through.
	Fields []arrow.Field
	// Meta is added to the schema metadata (e.g. MetaContextLength).
	Meta map[string]string
	// Fn computes the new columns of one input batch. firstRow is the stream
	// row number of rec's first row, for messages. Columns have one entry per
	// input row; when keep is non-nil, rows with keep[i] false are dropped
	// (their entries in the columns may hold anything, e.g. zeros).
	// Errors are prefixed with the input's name.
	Fn func(rec arrow.RecordBatch, firstRow int64) (cols []arrow.Array, keep []bool, err error)
}

// TransformStats counts what a transform did.
type TransformStats struct {
	RowsIn, RowsOut, Dropped int64
}

// OutputSchema is the schema a transform writes for the given input schema:
// fields set, metadata added, provenance appended.
func (s TransformSpec) OutputSchema(in *arrow.Schema) *arrow.Schema {
	out := SetFields(in, s.Fields...)
	for _, k := range slices.Sorted(maps.Keys(s.Meta)) {
		out = WithMeta(out, k, s.Meta[k])
	}
	return WithProvenance(out, s.Stage, s.Args)
}

// Transform runs spec over every batch of in and writes the result
// atomically (see Writer). On any error the output is aborted.
func Transform(in *Reader, spec TransformSpec) (TransformStats, error) {
	var st TransformStats
	schema := spec.OutputSchema(in.Schema())
	w, err := Create(spec.Out, schema, spec.Options)
	if err != nil {
		return st, err
	}
	defer w.Abort()
	for in.Next() {
		rec := in.Batch()
		n := rec.NumRows()
		st.RowsIn += n
		cols, keep, err := spec.Fn(rec, in.FirstRow())
		if err != nil {
			return st, fmt.Errorf("%s: %w", in.Name(), err)
		}
		if keep != nil && int64(len(keep)) != n {
			return st, fmt.Errorf("%s: stage %s returned a keep mask of %d rows for a batch of %d", in.Name(), spec.Stage, len(keep), n)
		}
		out, err := SetColumns(rec, spec.Fields, cols)
		for _, c := range cols {
			c.Release()
		}
		if err != nil {
			return st, fmt.Errorf("%s: stage %s: %w", in.Name(), spec.Stage, err)
		}
		out = retag(out, schema)
		perRow := int64(0)
		if n > 0 {
			perRow = estimateBytes(out) / n
		}
		// Write kept rows as contiguous runs of zero-copy slices.
		for i := int64(0); i < n; {
			if keep != nil && !keep[i] {
				st.Dropped++
				i++
				continue
			}
			j := i + 1
			for j < n && (keep == nil || keep[j]) {
				j++
			}
			if err := w.writeRange(out, i, j, perRow); err != nil {
				out.Release()
				return st, err
			}
			st.RowsOut += j - i
			i = j
		}
		out.Release()
	}
	if err := in.Err(); err != nil {
		return st, err
	}
	return st, w.Close()
}

// retag gives rec the output schema (same fields, final metadata).
func retag(rec arrow.RecordBatch, schema *arrow.Schema) arrow.RecordBatch {
	out := array.NewRecordBatch(schema, rec.Columns(), rec.NumRows())
	rec.Release()
	return out
}
