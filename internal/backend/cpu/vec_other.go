//go:build !amd64 || purego

package cpu

// Without assembly only the Go table exists.
var asmOps = [...]*vecOps{}
