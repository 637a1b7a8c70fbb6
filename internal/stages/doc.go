// Package stages has no code: its tests build every stage binary and check
// what the stages promise together rather than one by one: --version and
// the version provenance records, the refusal of a terminal stdin, the same
// flag names and placeholders for the same things, docs/cli.md's table
// against the real --help, and `make -f pipeline.mk help`.
//
// After adding or changing a flag, regenerate docs/cli.md's table with
//
//	go test ./internal/stages -run TestDocsTable -update
package stages
