package cuda

import (
	"errors"
	"fmt"
	"strings"
)

// errLibAbsent says that no candidate library could be loaded at all.
var errLibAbsent = errors.New("not found")

// libTry is what loading one candidate library gave.
type libTry struct {
	loaded bool  // the library loaded; a non-nil err then names a missing symbol
	err    error // nil: loaded with every symbol resolved
}

// firstComplete returns the first of candidates that open loads with every
// symbol resolved. When none does, the error wraps errLibAbsent only if no
// candidate loaded: a library that loads but lacks a function clipline
// calls is a broken or unsupported install, which a test must report
// rather than take for an absent library.
func firstComplete(what string, candidates []string, open func(path string) libTry) (string, error) {
	var tried []string
	loaded := false
	for _, p := range candidates {
		r := open(p)
		if r.err == nil {
			return p, nil
		}
		loaded = loaded || r.loaded
		tried = append(tried, r.err.Error())
	}
	list := strings.Join(tried, "\n  ")
	if !loaded {
		return "", fmt.Errorf("%s %w; tried:\n  %s", what, errLibAbsent, list)
	}
	return "", fmt.Errorf("%s found but a function clipline calls is missing; tried:\n  %s", what, list)
}
