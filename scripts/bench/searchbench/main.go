// Command searchbench is clipline's side of scripts/bench/search_faiss.sh.
//
//	searchbench gen --dir DIR [--n 200000 --dim 512 --queries 704 --seed 1]
//
// writes DIR/gallery.f32 and DIR/queries.f32: seeded random unit vectors as
// raw little-endian float32, row-major, which faiss's side reads with numpy.
//
//	searchbench run --dir DIR --batch 1|64 [--queries 200 --k 10]
//
// packs the gallery, warms up, then searches the first --queries queries in
// batches of --batch and prints "queries/s X" and the first query's top k
// rows (for a cross-check with faiss).
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/clipline/clipline/internal/search"
	"github.com/clipline/clipline/internal/search/searchtest"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: searchbench gen|run [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dir := fs.String("dir", "", "folder of gallery.f32 and queries.f32")
	n := fs.Int("n", 200_000, "gen: gallery vectors")
	dim := fs.Int("dim", 512, "dimension")
	nq := fs.Int("queries", 0, "gen: queries to write (default 704); run: queries to search (default 200)")
	seed := fs.Uint64("seed", 1, "gen: random seed")
	batch := fs.Int("batch", 1, "run: queries per Search call")
	k := fs.Int("k", 10, "run: results per query")
	fs.Parse(os.Args[2:])
	var err error
	switch os.Args[1] {
	case "gen":
		err = gen(*dir, *n, *dim, max(*nq, 0), *seed)
	case "run":
		err = run(*dir, *dim, *nq, *batch, *k)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "searchbench:", err)
		os.Exit(1)
	}
}

func gen(dir string, n, dim, nq int, seed uint64) error {
	if nq == 0 {
		nq = 704
	}
	if err := write(filepath.Join(dir, "gallery.f32"), searchtest.Seeded(seed, n, dim)); err != nil {
		return err
	}
	return write(filepath.Join(dir, "queries.f32"), searchtest.Seeded(seed+1, nq, dim))
}

func write(path string, x []float32) error {
	b := make([]byte, 0, 4*len(x))
	for _, v := range x {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func read(path string, dim int) ([]float32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b)%(4*dim) != 0 {
		return nil, fmt.Errorf("%s: %d bytes are not rows of %d float32", path, len(b), dim)
	}
	x := make([]float32, len(b)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return x, nil
}

func run(dir string, dim, nq, batch, k int) error {
	if nq == 0 {
		nq = 200
	}
	rows, err := read(filepath.Join(dir, "gallery.f32"), dim)
	if err != nil {
		return err
	}
	queries, err := read(filepath.Join(dir, "queries.f32"), dim)
	if err != nil {
		return err
	}
	if nq > len(queries)/dim || batch < 1 {
		return fmt.Errorf("%d queries in batches of %d from a file of %d", nq, batch, len(queries)/dim)
	}
	data, width := search.Pack(rows, dim)
	g, err := search.NewGallery(data, width, len(rows)/dim, dim)
	if err != nil {
		return err
	}
	rows = nil
	// Warm-up: a batch from beyond the timed queries when there is one.
	warm := queries[:batch*dim]
	if len(queries) >= (nq+batch)*dim {
		warm = queries[nq*dim : (nq+batch)*dim]
	}
	if _, err := g.Search(warm, k, nil); err != nil {
		return err
	}
	var first []search.Hit
	t0 := time.Now()
	for q := 0; q < nq; q += batch {
		hits, err := g.Search(queries[q*dim:min(q+batch, nq)*dim], k, nil)
		if err != nil {
			return err
		}
		if q == 0 {
			first = hits[0]
		}
	}
	el := time.Since(t0)
	fmt.Printf("queries/s %.1f\n", float64(nq)/el.Seconds())
	fmt.Print("top")
	for _, h := range first {
		fmt.Printf(" %d", h.Row)
	}
	fmt.Println()
	return nil
}
