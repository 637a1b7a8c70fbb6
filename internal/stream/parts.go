package stream

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

// PartName is the file name of part k (0-based) of n in a directory of
// parts, as sharded stages write it: PartName(3, 7) = "part-00003-of-00007.arrow".
func PartName(k, n int) string { return fmt.Sprintf("part-%05d-of-%05d.arrow", k, n) }

// ParsePartName reads k and n back from a PartName; ok is false for any
// other name (including a non-canonical spelling such as part-3-of-7.arrow).
func ParsePartName(name string) (k, n int, ok bool) {
	rest, found := strings.CutPrefix(name, "part-")
	if !found {
		return 0, 0, false
	}
	rest, found = strings.CutSuffix(rest, ".arrow")
	if !found {
		return 0, 0, false
	}
	ks, ns, found := strings.Cut(rest, "-of-")
	if !found {
		return 0, 0, false
	}
	k, errK := strconv.Atoi(ks)
	n, errN := strconv.Atoi(ns)
	if errK != nil || errN != nil || k < 0 || k >= n || PartName(k, n) != name {
		return 0, 0, false
	}
	return k, n, true
}

// partPaths lists a directory of parts in order: every entry not starting
// with a dot (those are temporaries of writers still at work, or hidden
// files) must be a part of one count N, and all N must be there.
func partPaths(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var paths []string
	count := 0
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		k, n, ok := ParsePartName(name)
		if !ok || e.IsDir() {
			return nil, fmt.Errorf("%s: stray entry %s in a directory of parts (it holds only part-KKKKK-of-NNNNN.arrow files)", dir, name)
		}
		if count == 0 {
			count = n
			paths = make([]string, n)
		} else if n != count {
			return nil, fmt.Errorf("%s: parts of different counts: %s and %s (parts of two runs?)", dir, name, PartName(0, count))
		}
		paths[k] = filepath.Join(dir, name)
	}
	if count == 0 {
		return nil, fmt.Errorf("%s: a directory without parts (part-KKKKK-of-NNNNN.arrow)", dir)
	}
	var missing []string
	for k, p := range paths {
		if p == "" {
			missing = append(missing, PartName(k, count))
		}
	}
	if n := len(missing); n > 0 {
		if n > 5 {
			missing = append(missing[:5], fmt.Sprintf("and %d more", n-5))
		}
		return nil, fmt.Errorf("%s: %d of %d parts missing: %s (a shard task that has not finished, or failed?)", dir, n, count, strings.Join(missing, ", "))
	}
	return paths, nil
}

// sameSchema checks that a part's schema is the first part's: the same
// fields, and the same metadata except the provenance, whose entries
// legitimately differ between parts (each names its --shard).
func sameSchema(first, other *arrow.Schema) error {
	if !first.Equal(other) {
		return fmt.Errorf("fields %v differ from the first part's %v", other.Fields(), first.Fields())
	}
	a, b := metaMap(first), metaMap(other)
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if v, ok := b[k]; !ok || v != a[k] {
			return fmt.Errorf("metadata %s is %q, the first part's %q", k, v, a[k])
		}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok {
			return fmt.Errorf("metadata %s (%q) is not in the first part", k, v)
		}
	}
	return nil
}

func metaMap(s *arrow.Schema) map[string]string {
	m := map[string]string{}
	md := s.Metadata()
	for i, k := range md.Keys() {
		if k != MetaProvenance {
			m[k] = md.Values()[i]
		}
	}
	return m
}
