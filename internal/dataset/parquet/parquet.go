// Package parquet reads image-caption datasets stored as parquet files, as
// Hugging Face datasets and img2dataset write them, into prepare's stream
// with the images in image_bytes. Files are read with arrow-go's
// parquet/pqarrow one row group at a time, in batches, and only the columns
// used are read, so a file is never loaded whole: what is held is a batch
// of rows, the writer's batch and one decompressed page of the image column
// (the writer chose its size: pyarrow's default is 1 MB, DuckDB's blob
// pages reach 100 MB).
//
// Columns (chosen by name; Options override the defaults):
//
//	image    binary (the encoded file), or Hugging Face's Image struct
//	         {bytes: binary, path: string}; default: image, jpg, png, webp, img
//	caption  string or list<string>; default: caption, captions, text, txt
//	id       any scalar (formatted); default: image_id, key, id, img_id, else
//	         FILESTEM/ROW
//	split    string, optional: a row's split, kept ("split" when present);
//	         without one, a file named as Hugging Face names a split's files,
//	         SPLIT-00000-of-00003.parquet (train, validation as val, test),
//	         gives its rows that split
//	url      string, optional: kept in the url column
//	status   string, optional (img2dataset's): a row whose status is not
//	         "success" has no image; it is skipped and counted, not bad
//
// A row is bad when its image is null, empty or no format decode reads (a
// Hugging Face Image with only a path is bad: the stream needs the bytes),
// its caption is null or empty, or its id is null; Prepare fails naming the
// file and row, or with SkipBad skips and counts it.
package parquet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	pq "github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/clipline/clipline/internal/dataset"
	"github.com/clipline/clipline/internal/imageproc"
)

// Default column names, tried in order.
var (
	ImageColumns   = []string{"image", "jpg", "png", "webp", "img"}
	CaptionColumns = []string{"caption", "captions", "text", "txt"}
	IDColumns      = []string{"image_id", "key", "id", "img_id"}
)

// splitColumn, urlColumn and statusColumn are used when present.
const (
	splitColumn  = "split"
	urlColumn    = "url"
	statusColumn = "status" // img2dataset's: "success", or why it has no image
)

// errNotDownloaded is a row img2dataset could not download: its status is
// not "success" (and its image null). Such rows are counted, not bad.
var errNotDownloaded = errors.New("not downloaded")

// batchRows is the rows per batch read from a row group: a batch of images
// is what is held in memory.
const batchRows = 256

// Options control Prepare.
type Options struct {
	ImageColumn, CaptionColumn, IDColumn string // "" for the defaults

	// Split is the split of rows without a split column value, or with Draw
	// their train share (default train).
	Split string
	// Draw, when it holds out val or test fractions, splits the rows without
	// a split value by a seeded draw over their order in the files, bad rows
	// included, so skipping one leaves the others' splits as they were.
	Draw    dataset.Fractions
	SkipBad bool
	// Log receives one line per skipped row and the summary (nil: none).
	Log io.Writer
}

// Stats counts what Prepare read.
type Stats struct {
	Files int
	Rows  int // rows read, bad ones included
	Bad   int // skipped with SkipBad
	// NotDownloaded counts the rows img2dataset lists without an image
	// (status not "success"), skipped without SkipBad.
	NotDownloaded int
	Keyed         int // rows whose split came from the split column
}

// Files expands args into the parquet files to read, in order: a file is
// itself, a directory its *.parquet files (not recursive) sorted by name.
func Files(args []string) ([]string, error) {
	return dataset.Inputs("parquet", ".parquet", args, func(name string) bool { return strings.HasSuffix(name, ".parquet") })
}

// source is one open file and the columns it is read by.
type source struct {
	path                    string
	pf                      *file.Reader
	fr                      *pqarrow.FileReader
	image                   string // column names; split, url and id may be ""
	hfImage                 bool   // the image column is an {bytes, path} struct
	caption, id, split, url string
	status                  string
	fileSplit               string // the split its name gives (Hugging Face's layout), without a split column
}

// Prepare writes the files' rows as prepare's stream (image_id, split,
// image_bytes, captions, and url when a file has one) through
// dataset.Writer. The footers are read first, so a file without the
// columns fails before anything is written.
//
// With wo.Part, the part is a contiguous range of the files' row groups
// (all files' row groups in order, so several files or one file of many
// row groups both shard). The footers, and the split and id columns when
// there is a draw or an id column, are read for every row group, so the
// draw, the columns and the image_id check are the whole dataset's and the
// parts concatenate to the unsharded stream; the images of a row group are
// read by one task.
func Prepare(paths []string, o Options, wo dataset.WriteOptions) (Stats, error) {
	var st Stats
	if err := o.Draw.Check(); err != nil {
		return st, err
	}
	if o.Split == "" {
		o.Split = dataset.Train
	}
	var srcs []*source
	defer func() {
		for _, s := range srcs {
			s.close()
		}
	}()
	hasURL := false
	var units []unit
	for i, p := range paths {
		s, err := open(p, o)
		if err != nil {
			return st, err
		}
		srcs = append(srcs, s)
		hasURL = hasURL || s.url != ""
		if s.fileSplit != "" && o.Log != nil {
			fmt.Fprintf(o.Log, "prepare: %s is split %s by its name\n", p, s.fileSplit)
		}
		row := 0
		for rg := range s.pf.NumRowGroups() {
			n := int(s.pf.MetaData().RowGroup(rg).NumRows())
			units = append(units, unit{src: i, rg: rg, row: row, rows: n})
			row += n
		}
		s.close()
	}
	lo, hi := wo.Part.Range(len(units))
	var splits []string
	unkeyed := 0 // rows without a split value before the next one written
	if !o.Draw.Zero() || wo.Part.Sharded() {
		counts, err := scanKeys(srcs, units, wo.Part.Sharded())
		if err != nil {
			return st, err
		}
		total := 0
		for i, n := range counts {
			if i == lo {
				unkeyed = total
			}
			total += n
		}
		if !o.Draw.Zero() {
			splits = o.Draw.Draw(total)
		}
	}
	w, err := dataset.NewWriter(dataset.Columns{ImageBytes: true, URL: hasURL}, wo)
	if err != nil {
		return st, err
	}
	defer w.Abort() // no-op after a successful Close
	files := map[int]bool{}
	for _, u := range units[lo:hi] {
		s, err := openOnly(srcs, u.src)
		if err != nil {
			return st, err
		}
		files[u.src] = true
		err = s.rows(u, func(row int, r dataset.Row, bad error) error {
			st.Rows++
			keyed := r.Split != ""
			if !keyed {
				r.Split = o.Split
				if splits != nil && splits[unkeyed] != dataset.Train {
					r.Split = splits[unkeyed]
				}
				unkeyed++
			}
			if bad == errNotDownloaded {
				st.NotDownloaded++
				return nil
			}
			if bad != nil {
				msg := fmt.Sprintf("parquet %s: row %d: %v", s.path, row, bad)
				if !o.SkipBad {
					return fmt.Errorf("%s (use --skip-bad to skip such rows)", msg)
				}
				st.Bad++
				if o.Log != nil {
					fmt.Fprintf(o.Log, "%s: skipped\n", msg)
				}
				return nil
			}
			if keyed {
				st.Keyed++
			}
			if err := w.Add(r); err != nil {
				return fmt.Errorf("parquet %s: row %d: %w", s.path, row, err)
			}
			return nil
		})
		if err != nil {
			return st, err
		}
	}
	st.Files = len(files)
	if st.Rows == st.Bad+st.NotDownloaded && !wo.Part.Sharded() {
		return st, fmt.Errorf("parquet: no usable rows in %d files (%d rows, %d bad, %d not downloaded)", st.Files, st.Rows, st.Bad, st.NotDownloaded)
	}
	st.Report(o.Log, o)
	return st, w.Close()
}

// nameSplit is the split that a Hugging Face dataset's file name gives,
// SPLIT-00000-of-00003.parquet, "validation" as clipline's "val"; "" for
// other names.
func nameSplit(base string) string {
	m := hfName.FindStringSubmatch(base)
	switch {
	case m == nil:
		return ""
	case m[1] == "validation":
		return dataset.Val
	}
	return m[1]
}

var hfName = regexp.MustCompile(`^(train|validation|test)-[0-9]{5}-of-[0-9]{5}\.parquet$`)

// unit is one row group of one file: the unit of --shard's parts.
type unit struct {
	src, rg   int
	row, rows int // the file's row number of its first row; its rows
}

// Report writes prepare's summary of what was read and skipped to w (nil: none).
func (s Stats) Report(w io.Writer, o Options) {
	one := ""
	if s.Keyed == 0 && o.Draw.Zero() {
		one = o.Split
	}
	dataset.ReportRead(w, s.Files, "parquet files", s.Rows, "rows", s.Bad, one)
	if w != nil && s.NotDownloaded > 0 {
		fmt.Fprintf(w, "prepare: skipped %d rows that img2dataset could not download (status not success)\n", s.NotDownloaded)
	}
	if w != nil && s.Keyed > 0 {
		fmt.Fprintf(w, "prepare: %d rows kept the split their split column or file name gives\n", s.Keyed)
	}
}

// open reads path's footer and picks its columns.
func open(path string, o Options) (*source, error) {
	s := &source{path: path}
	if err := s.reopen(); err != nil {
		return nil, err
	}
	if err := s.pick(o); err != nil {
		s.close()
		return nil, fmt.Errorf("parquet %s: %w", path, err)
	}
	return s, nil
}

// reopen opens the file again if it is closed. Prepare keeps one file open
// at a time, so a dataset of thousands of files stays under the limit of
// open files.
func (s *source) reopen() error {
	if s.pf != nil {
		return nil
	}
	// A buffered stream reads a column chunk a buffer at a time, not whole:
	// img2dataset writes a shard's images as one row group of hundreds of MB.
	props := pq.NewReaderProperties(memory.DefaultAllocator)
	props.BufferedStreamEnabled = true
	props.BufferSize = 1 << 20
	pf, err := file.OpenParquetFile(s.path, false, file.WithReadProps(props))
	if err != nil {
		return fmt.Errorf("parquet %s: %w", s.path, err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: batchRows}, memory.DefaultAllocator)
	if err != nil {
		pf.Close()
		return fmt.Errorf("parquet %s: %w", s.path, err)
	}
	s.pf, s.fr = pf, fr
	return nil
}

// close closes the file (if open); reopen opens it again.
func (s *source) close() {
	if s.pf != nil {
		s.pf.Close()
		s.pf, s.fr = nil, nil
	}
}

// openOnly makes srcs[i] the one open file.
func openOnly(srcs []*source, i int) (*source, error) {
	for j, s := range srcs {
		if j != i {
			s.close()
		}
	}
	return srcs[i], srcs[i].reopen()
}

// pick chooses and checks the columns of the file's schema.
func (s *source) pick(o Options) error {
	sc, err := s.fr.Schema()
	if err != nil {
		return err
	}
	var names []string
	types := map[string]arrow.DataType{}
	for _, f := range sc.Fields() {
		names = append(names, f.Name)
		types[f.Name] = f.Type
	}
	choose := func(what, flag, given string, defaults []string, required bool) (string, error) {
		if given != "" {
			if _, ok := types[given]; !ok {
				return "", fmt.Errorf("no %s column %q (--%s); the columns are %s", what, given, flag, strings.Join(names, ", "))
			}
			return given, nil
		}
		for _, d := range defaults {
			if _, ok := types[d]; ok {
				return d, nil
			}
		}
		if !required {
			return "", nil
		}
		return "", fmt.Errorf("no %s column (looked for %s; name it with --%s); the columns are %s",
			what, strings.Join(defaults, ", "), flag, strings.Join(names, ", "))
	}
	if s.image, err = choose("image", "image-column", o.ImageColumn, ImageColumns, true); err != nil {
		return err
	}
	if s.caption, err = choose("caption", "caption-column", o.CaptionColumn, CaptionColumns, true); err != nil {
		return err
	}
	if s.id, err = choose("id", "id-column", o.IDColumn, IDColumns, false); err != nil {
		return err
	}
	switch t := types[s.image].(type) {
	case *arrow.StructType:
		b, ok := t.FieldByName("bytes")
		if !ok || !isBinary(b.Type) {
			return fmt.Errorf("image column %s is %s: want binary or a struct with binary \"bytes\" (Hugging Face's Image)", s.image, t)
		}
		s.hfImage = true
	default:
		if !isBinary(t) {
			return fmt.Errorf("image column %s is %s: want binary or a struct with binary \"bytes\" (Hugging Face's Image)", s.image, t)
		}
	}
	if t := types[s.caption]; !isString(t) && !(isList(t) && isString(listElem(t))) {
		return fmt.Errorf("caption column %s is %s: want string or list<string>", s.caption, t)
	}
	if s.id != "" && !isScalar(types[s.id]) {
		return fmt.Errorf("id column %s is %s: want a string or a number", s.id, types[s.id])
	}
	if t, ok := types[splitColumn]; ok && isString(t) {
		s.split = splitColumn
	} else {
		s.fileSplit = nameSplit(filepath.Base(s.path))
	}
	if t, ok := types[urlColumn]; ok && isString(t) {
		s.url = urlColumn
	}
	if t, ok := types[statusColumn]; ok && isString(t) {
		s.status = statusColumn
	}
	return nil
}

// reader reads the named top-level columns of one row group.
func (s *source) reader(rowGroup int, cols ...string) (pqarrow.RecordReader, error) {
	var leaves []int
	for i := range s.fr.Manifest.Fields {
		f := &s.fr.Manifest.Fields[i]
		if slices.Contains(cols, f.Field.Name) {
			leaves = appendLeaves(leaves, f)
		}
	}
	return s.fr.GetRecordReader(context.Background(), leaves, []int{rowGroup})
}

func appendLeaves(dst []int, f *pqarrow.SchemaField) []int {
	if f.IsLeaf() {
		return append(dst, f.ColIndex)
	}
	for i := range f.Children {
		dst = appendLeaves(dst, &f.Children[i])
	}
	return dst
}

// scanKeys returns each unit's count of rows without a split value,
// reading the split column where a file has one, and with ids (sharded
// runs, where each part's writer sees only its own rows) fails on an
// image_id that two rows share, as the unsharded run would.
func scanKeys(srcs []*source, units []unit, ids bool) ([]int, error) {
	counts := make([]int, len(units))
	seen := map[string]string{} // image_id -> "FILE row N"
	for k, u := range units {
		s := srcs[u.src]
		cols := []string{s.split}
		if ids {
			cols = append(cols, s.id)
		}
		if s.split == "" && (!ids || s.id == "") {
			if s.fileSplit == "" {
				counts[k] = u.rows // nothing to read: ids are FILESTEM/ROW
			}
			continue
		}
		if _, err := openOnly(srcs, u.src); err != nil {
			return nil, err
		}
		rr, err := s.reader(u.rg, cols...)
		if err != nil {
			return nil, fmt.Errorf("parquet %s: row group %d: %w", s.path, u.rg, err)
		}
		row := u.row
		for rr.Next() {
			rec := rr.RecordBatch()
			col := func(name string) arrow.Array {
				if idx := rec.Schema().FieldIndices(name); name != "" && len(idx) == 1 {
					return rec.Column(idx[0])
				}
				return nil
			}
			split, id := col(s.split), col(s.id)
			for i := range int(rec.NumRows()) {
				if split == nil && s.fileSplit == "" || split != nil && (split.IsNull(i) || strings.TrimSpace(split.(stringArray).Value(i)) == "") {
					counts[k]++
				}
				if ids && id != nil && id.IsValid(i) {
					v := id.ValueStr(i)
					if other, dup := seen[v]; dup {
						rr.Release()
						return nil, fmt.Errorf("parquet %s: row %d: image_id %q duplicates %s", s.path, row, v, other)
					}
					seen[v] = fmt.Sprintf("%s row %d", s.path, row)
				}
				row++
			}
		}
		err = rr.Err()
		rr.Release()
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("parquet %s: row group %d: %w", s.path, u.rg, err)
		}
	}
	return counts, nil
}

// rows calls fn with every row of row group u, in order: the row number
// in the file, the row (Split "" when it has no split value) and, for a bad
// row, why.
func (s *source) rows(u unit, fn func(row int, r dataset.Row, bad error) error) error {
	stem := strings.TrimSuffix(filepath.Base(s.path), filepath.Ext(s.path))
	row := u.row
	rr, err := s.reader(u.rg, s.image, s.caption, s.id, s.split, s.url, s.status)
	if err != nil {
		return fmt.Errorf("parquet %s: row group %d: %w", s.path, u.rg, err)
	}
	defer rr.Release()
	for rr.Next() {
		b, err := s.batch(rr.RecordBatch())
		if err != nil {
			return fmt.Errorf("parquet %s: row group %d: %w", s.path, u.rg, err)
		}
		for i := range b.n {
			r, bad := b.row(i)
			if r.ImageID == "" && s.id == "" {
				r.ImageID = fmt.Sprintf("%s/%d", stem, row)
			}
			if r.Split == "" {
				r.Split = s.fileSplit
			}
			if err := fn(row, r, bad); err != nil {
				return err
			}
			row++
		}
	}
	if err := rr.Err(); err != nil && err != io.EOF {
		return fmt.Errorf("parquet %s: row group %d: %w", s.path, u.rg, err)
	}
	if row != u.row+u.rows {
		return fmt.Errorf("parquet %s: row group %d: %d rows read, the footer says %d", s.path, u.rg, row-u.row, u.rows)
	}
	return nil
}

// batch is one record batch's columns, typed.
type batch struct {
	n        int
	images   binaryArray
	imgValid func(i int) bool // the struct's own validity, for HF Image
	paths    stringArray      // HF Image's path, for messages
	caps     arrow.Array
	ids      arrow.Array
	splits   stringArray
	urls     stringArray
	status   stringArray
}

func (s *source) batch(rec arrow.RecordBatch) (*batch, error) {
	col := func(name string) arrow.Array {
		if name == "" {
			return nil
		}
		idx := rec.Schema().FieldIndices(name)
		if len(idx) != 1 {
			return nil
		}
		return rec.Column(idx[0])
	}
	b := &batch{n: int(rec.NumRows()), caps: col(s.caption), ids: col(s.id)}
	img := col(s.image)
	if img == nil || b.caps == nil {
		return nil, fmt.Errorf("the reader returned no %s or %s column", s.image, s.caption)
	}
	if s.hfImage {
		st := img.(*array.Struct)
		t := st.DataType().(*arrow.StructType)
		i, _ := t.FieldIdx("bytes")
		b.images = st.Field(i).(binaryArray)
		b.imgValid = st.IsValid
		if j, ok := t.FieldIdx("path"); ok {
			b.paths, _ = st.Field(j).(stringArray)
		}
	} else {
		b.images = img.(binaryArray)
		b.imgValid = img.IsValid
	}
	if a := col(s.split); a != nil {
		b.splits = a.(stringArray)
	}
	if a := col(s.url); a != nil {
		b.urls = a.(stringArray)
	}
	if a := col(s.status); a != nil {
		b.status = a.(stringArray)
	}
	return b, nil
}

// row is row i of the batch; bad says why it cannot be used.
func (b *batch) row(i int) (dataset.Row, error) {
	var r dataset.Row
	if b.splits != nil && b.splits.IsValid(i) {
		r.Split = strings.TrimSpace(b.splits.Value(i))
	}
	if b.urls != nil && b.urls.IsValid(i) {
		r.URL = b.urls.Value(i)
	}
	if b.status != nil && b.status.IsValid(i) && b.status.Value(i) != "success" {
		return r, errNotDownloaded
	}
	if b.ids != nil {
		if b.ids.IsNull(i) {
			return r, errors.New("the id is null")
		}
		r.ImageID = b.ids.ValueStr(i)
	}
	switch {
	case !b.imgValid(i) || b.images.IsNull(i):
		if b.paths != nil && b.paths.IsValid(i) && b.paths.Value(i) != "" {
			return r, fmt.Errorf("the image has no bytes, only the path %q (the stream needs the image itself)", b.paths.Value(i))
		}
		return r, errors.New("the image is null")
	case len(b.images.Value(i)) == 0:
		return r, errors.New("the image is empty")
	}
	img := b.images.Value(i)
	if imageproc.Format(img) == "" {
		return r, fmt.Errorf("the image is not an image file (it starts with %q): %v", img[:min(len(img), 12)], imageproc.ErrUnknownFormat)
	}
	r.ImageBytes = slices.Clone(img) // the batch is released before the row is written
	caps, err := captions(b.caps, i)
	if err != nil {
		return r, err
	}
	r.Captions = caps
	return r, nil
}

// captions reads row i of a string or list<string> caption column.
func captions(a arrow.Array, i int) ([]string, error) {
	if a.IsNull(i) {
		return nil, errors.New("the caption is null")
	}
	var caps []string
	if s, ok := a.(stringArray); ok {
		caps = []string{s.Value(i)}
	} else {
		l := a.(listArray)
		vals := l.ListValues().(stringArray)
		lo, hi := l.ValueOffsets(i)
		for k := lo; k < hi; k++ {
			if vals.IsNull(int(k)) {
				return nil, fmt.Errorf("caption %d is null", k-lo)
			}
			caps = append(caps, vals.Value(int(k)))
		}
		if len(caps) == 0 {
			return nil, errors.New("the caption list is empty")
		}
	}
	for k, c := range caps {
		caps[k] = strings.TrimSpace(c)
		switch {
		case caps[k] == "":
			return nil, fmt.Errorf("caption %d is empty", k)
		case !utf8.ValidString(caps[k]):
			return nil, fmt.Errorf("caption %d is not valid UTF-8", k)
		}
	}
	return caps, nil
}

// The array shapes read: binary, large_binary and binary_view; utf8,
// large_utf8 and utf8_view; list and large_list.
type (
	binaryArray interface {
		arrow.Array
		Value(i int) []byte
	}
	stringArray interface {
		arrow.Array
		Value(i int) string
	}
	listArray interface {
		arrow.Array
		ValueOffsets(i int) (start, end int64)
		ListValues() arrow.Array
	}
)

func isBinary(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.BINARY, arrow.LARGE_BINARY, arrow.BINARY_VIEW:
		return true
	}
	return false
}

func isString(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
		return true
	}
	return false
}

func isList(t arrow.DataType) bool {
	return t.ID() == arrow.LIST || t.ID() == arrow.LARGE_LIST
}

func listElem(t arrow.DataType) arrow.DataType {
	return t.(arrow.ListLikeType).Elem()
}

func isScalar(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return true
	}
	return isString(t)
}
