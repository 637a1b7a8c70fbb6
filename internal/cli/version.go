package cli

import (
	"fmt"
	"runtime/debug"
)

// Version is the running binary's module version and VCS revision, as
// --version prints it after "STAGE clipline " and stream provenance records
// it, e.g. "v0.0.0-20261207052715-33e419e3b4fa (rev 33e419e, modified)".
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return VersionOf(nil)
	}
	return VersionOf(bi)
}

// VersionOf is Version for the build information bi (nil when there is
// none). "(devel)" stands for a build without a module version: go test,
// go run, or go build -buildvcs=false.
func VersionOf(bi *debug.BuildInfo) string {
	v := "(devel)"
	if bi == nil {
		return v
	}
	if bi.Main.Version != "" {
		v = bi.Main.Version
	}
	var rev string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		return v
	}
	rev = rev[:min(len(rev), 7)]
	if modified {
		return fmt.Sprintf("%s (rev %s, modified)", v, rev)
	}
	return fmt.Sprintf("%s (rev %s)", v, rev)
}
