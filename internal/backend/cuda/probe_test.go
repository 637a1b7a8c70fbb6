package cuda

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// A library that loads but lacks a symbol (here a fake one) is an error,
// not an absent library; an absent library is errLibAbsent; the first
// complete candidate wins.
func TestFirstComplete(t *testing.T) {
	libs := map[string]libTry{
		"libabsent.so": {err: errors.New("libabsent.so: cannot open shared object file")},
		"libold.so":    {loaded: true, err: errors.New("libold.so: symbol cublasNoSuchFunction_v9 missing")},
		"libgood.so":   {loaded: true},
	}
	open := func(p string) libTry { return libs[p] }
	for _, c := range []struct {
		cands  []string
		want   string
		absent bool // the error wraps errLibAbsent
	}{
		{[]string{"libabsent.so", "libgood.so"}, "libgood.so", false},
		{[]string{"libold.so", "libgood.so"}, "libgood.so", false},
		{[]string{"libabsent.so", "libold.so"}, "", false},
		{[]string{"libabsent.so"}, "", true},
		{nil, "", true},
	} {
		p, err := firstComplete("cuBLAS", c.cands, open)
		what := fmt.Sprint(c.cands)
		if p != c.want || (err == nil) != (c.want != "") {
			t.Errorf("%s: got %q, %v; want %q", what, p, err, c.want)
		}
		if err != nil && errors.Is(err, errLibAbsent) != c.absent {
			t.Errorf("%s: %v: absent %v, want %v", what, err, errors.Is(err, errLibAbsent), c.absent)
		}
		if err != nil && !c.absent && !strings.Contains(err.Error(), "cublasNoSuchFunction_v9 missing") {
			t.Errorf("%s: %v does not name the missing symbol", what, err)
		}
	}
}
