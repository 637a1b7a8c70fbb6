//go:build !linux

package index

import "errors"

// exchange is Linux's renameat2(RENAME_EXCHANGE); elsewhere replace falls
// back to two renames.
func exchange(a, b string) error { return errors.ErrUnsupported }
