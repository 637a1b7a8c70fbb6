package stream

import (
	"fmt"
	"math"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// hints name the stage that adds each column, for "missing column" errors.
var hints = map[string]string{
	ColImageID:           "prepare",
	ColSplit:             "prepare",
	ColImagePath:         "prepare",
	ColImageBytes:        "prepare --embed-images",
	ColCaptions:          "prepare",
	ColCaptionTokens:     "tokenize",
	ColPixels:            "decode",
	ColImageEmbedding:    "embed",
	ColCaptionEmbeddings: "embed",
}

// checkType reports whether dt has the contract shape of column name
// (widths are free: they are checked against the model by the stages).
// Readers also accept the large and view string types and large lists, which
// other tools (polars, DuckDB) may write back.
func checkType(name string, dt arrow.DataType) bool {
	fslOf := func(dt arrow.DataType, elem arrow.Type) bool {
		f, ok := dt.(*arrow.FixedSizeListType)
		return ok && f.Elem().ID() == elem
	}
	listOf := func(dt arrow.DataType) arrow.DataType {
		switch l := dt.(type) {
		case *arrow.ListType:
			return l.Elem()
		case *arrow.LargeListType:
			return l.Elem()
		}
		return nil
	}
	isString := func(dt arrow.DataType) bool {
		switch dt.ID() {
		case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
			return true
		}
		return false
	}
	switch name {
	case ColImageID, ColSplit, ColImagePath:
		return isString(dt)
	case ColImageBytes:
		switch dt.ID() {
		case arrow.BINARY, arrow.LARGE_BINARY, arrow.BINARY_VIEW:
			return true
		}
		return false
	case ColCaptions:
		e := listOf(dt)
		return e != nil && isString(e)
	case ColCaptionTokens:
		e := listOf(dt)
		return e != nil && fslOf(e, arrow.INT32)
	case ColPixels:
		return fslOf(dt, arrow.UINT8)
	case ColImageEmbedding:
		return fslOf(dt, arrow.FLOAT32)
	case ColCaptionEmbeddings:
		e := listOf(dt)
		return e != nil && fslOf(e, arrow.FLOAT32)
	}
	return true
}

// stringArray is utf8, large_utf8 or utf8_view; listArray list or large_list.
type stringArray interface {
	arrow.Array
	Value(i int) string
}

// binaryArray is binary, large_binary or binary_view.
type binaryArray interface {
	arrow.Array
	Value(i int) []byte
}

type listArray interface {
	arrow.Array
	ValueOffsets(i int) (start, end int64)
	ListValues() arrow.Array
}

func contractType(name string) string {
	switch name {
	case ColImageID, ColSplit, ColImagePath:
		return "utf8"
	case ColImageBytes:
		return "binary"
	case ColCaptions:
		return "list<utf8>"
	case ColCaptionTokens:
		return "list<fixed_size_list<int32>[context]>"
	case ColPixels:
		return "fixed_size_list<uint8>[size*size*3]"
	case ColImageEmbedding:
		return "fixed_size_list<float32>[dim]"
	case ColCaptionEmbeddings:
		return "list<fixed_size_list<float32>[dim]>"
	}
	return "?"
}

// RequireColumns checks that schema has each named column with its contract
// type, e.g. "column caption_tokens missing; run tokenize first".
func RequireColumns(schema *arrow.Schema, cols ...string) error {
	for _, name := range cols {
		i := schema.FieldIndices(name)
		if len(i) == 0 {
			if h, ok := hints[name]; ok {
				return fmt.Errorf("column %s missing; run %s first", name, h)
			}
			return fmt.Errorf("column %s missing", name)
		}
		if dt := schema.Field(i[0]).Type; !checkType(name, dt) {
			return fmt.Errorf("column %s has type %s, want %s", name, dt, contractType(name))
		}
	}
	return nil
}

// HasColumn reports whether schema has a column named name.
func HasColumn(schema *arrow.Schema, name string) bool { return schema.HasField(name) }

// Column returns rec's column named name after checking it against the
// contract, with the same errors as RequireColumns.
func Column(rec arrow.RecordBatch, name string) (arrow.Array, error) {
	if err := RequireColumns(rec.Schema(), name); err != nil {
		return nil, err
	}
	return rec.Column(rec.Schema().FieldIndices(name)[0]), nil
}

func noNulls(name string, a arrow.Array) error {
	if a.NullN() > 0 {
		for i := range a.Len() {
			if a.IsNull(i) {
				return fmt.Errorf("column %s: row %d is null", name, i)
			}
		}
	}
	return nil
}

// Strings returns a utf8 column's values (copied, so they outlive the batch).
func Strings(rec arrow.RecordBatch, name string) ([]string, error) {
	col, err := Column(rec, name)
	if err != nil {
		return nil, err
	}
	a, ok := col.(stringArray)
	if !ok {
		return nil, fmt.Errorf("column %s has type %s, want utf8", name, col.DataType())
	}
	if err := noNulls(name, a); err != nil {
		return nil, err
	}
	out := make([]string, a.Len())
	for i := range out {
		out[i] = strings.Clone(a.Value(i))
	}
	return out, nil
}

// Binaries returns a binary column's values, one []byte per row. They alias
// the batch's memory (no copy, so a mapped file's images are not read until
// used): treat them as read-only and keep the batch alive while using them.
func Binaries(rec arrow.RecordBatch, name string) ([][]byte, error) {
	col, err := Column(rec, name)
	if err != nil {
		return nil, err
	}
	a, ok := col.(binaryArray)
	if !ok {
		return nil, fmt.Errorf("column %s has type %s, want binary", name, col.DataType())
	}
	if err := noNulls(name, a); err != nil {
		return nil, err
	}
	out := make([][]byte, a.Len())
	for i := range out {
		out[i] = a.Value(i)
	}
	return out, nil
}

// StringLists returns a list<utf8> column (copied), one []string per row.
func StringLists(rec arrow.RecordBatch, name string) ([][]string, error) {
	vals, offsets, err := FlatStringLists(rec, name)
	if err != nil {
		return nil, err
	}
	out := make([][]string, len(offsets)-1)
	for i := range out {
		row := vals[offsets[i]:offsets[i+1]]
		out[i] = make([]string, len(row))
		for j, v := range row {
			out[i][j] = strings.Clone(v)
		}
	}
	return out, nil
}

// FlatStringLists returns a list<utf8> column in flat form: every row's
// strings in one slice, row i's being vals[offsets[i]:offsets[i+1]]
// (offsets has rows+1 entries and starts at 0). The strings alias the
// batch's memory, for callers that use them before releasing it (tokenize
// reads captions without copying them).
func FlatStringLists(rec arrow.RecordBatch, name string) (vals []string, offsets []int32, err error) {
	col, err := Column(rec, name)
	if err != nil {
		return nil, nil, err
	}
	l, ok := col.(listArray)
	if !ok {
		return nil, nil, fmt.Errorf("column %s has type %s, want list<utf8>", name, col.DataType())
	}
	if err := noNulls(name, l); err != nil {
		return nil, nil, err
	}
	items, ok := l.ListValues().(stringArray)
	if !ok {
		return nil, nil, fmt.Errorf("column %s has type %s, want list<utf8>", name, col.DataType())
	}
	offsets = make([]int32, l.Len()+1)
	for i := range l.Len() {
		s, e := l.ValueOffsets(i)
		for j := s; j < e; j++ {
			if items.IsNull(int(j)) {
				return nil, nil, fmt.Errorf("column %s: row %d: caption %d is null", name, i, j-s)
			}
			vals = append(vals, items.Value(int(j)))
		}
		offsets[i+1] = int32(len(vals))
	}
	return vals, offsets, nil
}

// Lists is a list<fixed_size_list<T>[Width]> column in flat form: row i holds
// items Offsets[i] to Offsets[i+1]-1, and item k is Values[k*Width:(k+1)*Width].
// Offsets has rows+1 entries and starts at 0.
type Lists[T int32 | float32] struct {
	Width   int
	Values  []T
	Offsets []int32
}

// Rows is the number of rows.
func (l Lists[T]) Rows() int { return len(l.Offsets) - 1 }

// Count is the number of items (captions) in row i.
func (l Lists[T]) Count(i int) int { return int(l.Offsets[i+1] - l.Offsets[i]) }

// Item returns item j of row i.
func (l Lists[T]) Item(i, j int) []T {
	k := int(l.Offsets[i]) + j
	return l.Values[k*l.Width : (k+1)*l.Width]
}

// Row returns the items of row i, flat.
func (l Lists[T]) Row(i int) []T {
	return l.Values[int(l.Offsets[i])*l.Width : int(l.Offsets[i+1])*l.Width]
}

// Tokens is the caption_tokens column: Width is the context length.
type Tokens = Lists[int32]

// VectorLists is the caption_embeddings column: Width is the embedding dim.
type VectorLists = Lists[float32]

// Fixed is a fixed_size_list<T>[Width] column in flat form: row i is
// Values[i*Width:(i+1)*Width].
type Fixed[T uint8 | float32] struct {
	Width  int
	Values []T
}

// Rows is the number of rows.
func (f Fixed[T]) Rows() int {
	if f.Width == 0 {
		return 0
	}
	return len(f.Values) / f.Width
}

// Row returns row i.
func (f Fixed[T]) Row(i int) []T { return f.Values[i*f.Width : (i+1)*f.Width] }

// PixelRows is the pixels column: Width is size*size*3.
type PixelRows = Fixed[uint8]

// ImageSide is the side of the square images in p.
func ImageSide(p PixelRows) int { return int(math.Round(math.Sqrt(float64(p.Width / 3)))) }

// Vectors is the image_embedding column: Width is the embedding dim.
type Vectors = Fixed[float32]

// fixedValues returns the flat values of fsl's rows (zero-copy).
func fixedValues[T uint8 | int32 | float32](name string, fsl *array.FixedSizeList, from, to int) ([]T, error) {
	n := int(fsl.DataType().(*arrow.FixedSizeListType).Len())
	child := fsl.ListValues()
	if child.NullN() > 0 {
		return nil, fmt.Errorf("column %s: null values inside lists", name)
	}
	var vals []T
	switch c := child.(type) {
	case *array.Uint8:
		vals = any(c.Uint8Values()).([]T)
	case *array.Int32:
		vals = any(c.Int32Values()).([]T)
	case *array.Float32:
		vals = any(c.Float32Values()).([]T)
	default:
		return nil, fmt.Errorf("column %s: unexpected element type %s", name, child.DataType())
	}
	off := fsl.Offset()
	return vals[(off+from)*n : (off+to)*n], nil
}

func fixedCol[T uint8 | float32](rec arrow.RecordBatch, name string) (Fixed[T], error) {
	col, err := Column(rec, name)
	if err != nil {
		return Fixed[T]{}, err
	}
	fsl := col.(*array.FixedSizeList)
	if err := noNulls(name, fsl); err != nil {
		return Fixed[T]{}, err
	}
	v, err := fixedValues[T](name, fsl, 0, fsl.Len())
	return Fixed[T]{Width: int(fsl.DataType().(*arrow.FixedSizeListType).Len()), Values: v}, err
}

func listsCol[T int32 | float32](rec arrow.RecordBatch, name string) (Lists[T], error) {
	col, err := Column(rec, name)
	if err != nil {
		return Lists[T]{}, err
	}
	l, ok := col.(listArray)
	if !ok {
		return Lists[T]{}, fmt.Errorf("column %s has type %s, want a list", name, col.DataType())
	}
	if err := noNulls(name, l); err != nil {
		return Lists[T]{}, err
	}
	fsl := l.ListValues().(*array.FixedSizeList)
	if err := noNulls(name, fsl); err != nil {
		return Lists[T]{}, err
	}
	offs := make([]int32, l.Len()+1)
	var first int64
	if l.Len() > 0 {
		first, _ = l.ValueOffsets(0)
	}
	end := first
	for i := range l.Len() {
		_, e := l.ValueOffsets(i)
		offs[i+1] = int32(e - first)
		end = e
	}
	v, err := fixedValues[T](name, fsl, int(first), int(end))
	return Lists[T]{Width: int(fsl.DataType().(*arrow.FixedSizeListType).Len()), Values: v, Offsets: offs}, err
}

// The typed accessors below alias the batch's memory (no copy): treat the
// slices as read-only and keep the batch alive while using them.

// CaptionTokens returns the caption_tokens column.
func CaptionTokens(rec arrow.RecordBatch) (Tokens, error) {
	return listsCol[int32](rec, ColCaptionTokens)
}

// Pixels returns the pixels column.
func Pixels(rec arrow.RecordBatch) (PixelRows, error) { return fixedCol[uint8](rec, ColPixels) }

// ImageEmbeddings returns the image_embedding column.
func ImageEmbeddings(rec arrow.RecordBatch) (Vectors, error) {
	return fixedCol[float32](rec, ColImageEmbedding)
}

// CaptionEmbeddings returns the caption_embeddings column.
func CaptionEmbeddings(rec arrow.RecordBatch) (VectorLists, error) {
	return listsCol[float32](rec, ColCaptionEmbeddings)
}

// Builders. Fixed-width columns wrap the given slices without copying: do not
// modify them afterwards.

// NewStrings builds a utf8 array.
func NewStrings(vals []string) arrow.Array {
	b := array.NewStringBuilder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues(vals, nil)
	return b.NewArray()
}

// NewBinaries builds a binary array (the values are copied). Its 32-bit
// offsets hold at most 2 GiB: callers keep a batch's bytes under that.
func NewBinaries(vals [][]byte) arrow.Array {
	b := array.NewBinaryBuilder(memory.DefaultAllocator, arrow.BinaryTypes.Binary)
	defer b.Release()
	var n int
	for _, v := range vals {
		n += len(v)
	}
	if n > math.MaxInt32 {
		panic(fmt.Sprintf("stream: %d bytes in one binary array, more than its 32-bit offsets hold", n))
	}
	b.ReserveData(n)
	b.AppendValues(vals, nil)
	return b.NewArray()
}

// NewStringLists builds a list<utf8> array, one list per row.
func NewStringLists(rows [][]string) arrow.Array {
	b := array.NewListBuilder(memory.DefaultAllocator, arrow.BinaryTypes.String)
	defer b.Release()
	vb := b.ValueBuilder().(*array.StringBuilder)
	for _, r := range rows {
		b.Append(true)
		vb.AppendValues(r, nil)
	}
	return b.NewArray()
}

func bytesOf[T uint8 | int32 | float32](v []T) []byte {
	switch x := any(v).(type) {
	case []uint8:
		return x
	case []int32:
		return arrow.Int32Traits.CastToBytes(x)
	case []float32:
		return arrow.Float32Traits.CastToBytes(x)
	}
	panic("unreachable")
}

func fixedData[T uint8 | int32 | float32](elem arrow.DataType, width, rows int, vals []T) (arrow.DataType, *array.Data) {
	if len(vals) != width*rows {
		panic(fmt.Sprintf("stream: %d values for %d rows of width %d", len(vals), rows, width))
	}
	child := array.NewData(elem, len(vals), []*memory.Buffer{nil, memory.NewBufferBytes(bytesOf(vals))}, nil, 0, 0)
	defer child.Release()
	dt := arrow.FixedSizeListOf(int32(width), elem)
	return dt, array.NewData(dt, rows, []*memory.Buffer{nil}, []arrow.ArrayData{child}, 0, 0)
}

func newFixed[T uint8 | int32 | float32](elem arrow.DataType, width int, vals []T) arrow.Array {
	rows := 0
	if width > 0 {
		rows = len(vals) / width
	}
	_, d := fixedData(elem, width, rows, vals)
	defer d.Release()
	return array.MakeFromData(d)
}

func newLists[T int32 | float32](elem arrow.DataType, width int, vals []T, offsets []int32) arrow.Array {
	if len(offsets) == 0 {
		offsets = []int32{0}
	}
	items := int(offsets[len(offsets)-1] - offsets[0])
	if offsets[0] != 0 {
		panic("stream: list offsets must start at 0")
	}
	dt, fd := fixedData(elem, width, items, vals)
	defer fd.Release()
	ld := array.NewData(arrow.ListOf(dt), len(offsets)-1,
		[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(offsets))},
		[]arrow.ArrayData{fd}, 0, 0)
	defer ld.Release()
	return array.MakeFromData(ld)
}

// NewCaptionTokens builds a caption_tokens array.
func NewCaptionTokens(t Tokens) arrow.Array {
	return newLists(arrow.PrimitiveTypes.Int32, t.Width, t.Values, t.Offsets)
}

// NewPixels builds a pixels array.
func NewPixels(p PixelRows) arrow.Array {
	return newFixed(arrow.PrimitiveTypes.Uint8, p.Width, p.Values)
}

// NewImageEmbeddings builds an image_embedding array.
func NewImageEmbeddings(v Vectors) arrow.Array {
	return newFixed(arrow.PrimitiveTypes.Float32, v.Width, v.Values)
}

// NewCaptionEmbeddings builds a caption_embeddings array.
func NewCaptionEmbeddings(v VectorLists) arrow.Array {
	return newLists(arrow.PrimitiveTypes.Float32, v.Width, v.Values, v.Offsets)
}

// SetColumns returns rec with each of cols (named by fields) replacing the
// same-named column or appended; all other columns pass through untouched.
// The result keeps rec's schema metadata; release it after use.
func SetColumns(rec arrow.RecordBatch, fields []arrow.Field, cols []arrow.Array) (arrow.RecordBatch, error) {
	if len(fields) != len(cols) {
		return nil, fmt.Errorf("SetColumns: %d fields for %d columns", len(fields), len(cols))
	}
	schema := SetFields(rec.Schema(), fields...)
	out := make([]arrow.Array, schema.NumFields())
	copy(out, rec.Columns())
	for k, f := range fields {
		if int64(cols[k].Len()) != rec.NumRows() {
			return nil, fmt.Errorf("column %s has %d rows, batch has %d", f.Name, cols[k].Len(), rec.NumRows())
		}
		if !arrow.TypeEqual(cols[k].DataType(), f.Type) {
			return nil, fmt.Errorf("column %s: array type %s does not match field type %s", f.Name, cols[k].DataType(), f.Type)
		}
		out[schema.FieldIndices(f.Name)[0]] = cols[k]
	}
	return array.NewRecordBatch(schema, out, rec.NumRows()), nil
}
