package cuda

import (
	"fmt"
	"strings"
)

// The profile's figures and table, outside the build tag so that callers
// (scripts/gpu/clbench) compile in every build.

// ProfileEntry is one operation's accumulated figures.
type ProfileEntry struct {
	Op     string  `json:"op"`
	Calls  int     `json:"calls"`
	GPUms  float64 `json:"gpu_ms"`
	HostMS float64 `json:"host_ms"`
}

// FormatProfile renders a profile as a table; per divides the times and
// counts (the number of steps or batches; 1 for totals).
func FormatProfile(entries []ProfileEntry, per int) string {
	if per < 1 {
		per = 1
	}
	var top, host float64
	for _, e := range entries {
		if !strings.HasPrefix(e.Op, "(") {
			top += e.GPUms
			host += e.HostMS
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%-22s %10s %12s %7s %12s %10s\n", "op", "calls/it", "gpu ms/it", "gpu %", "host ms/it", "us/call")
	for _, e := range entries {
		pct := 0.0
		if top > 0 {
			pct = 100 * e.GPUms / top
		}
		us := 0.0
		if e.Calls > 0 {
			us = 1000 * e.GPUms / float64(e.Calls)
		}
		fmt.Fprintf(&sb, "%-22s %10.1f %12.3f %7.1f %12.3f %10.1f\n", e.Op, float64(e.Calls)/float64(per),
			e.GPUms/float64(per), pct, e.HostMS/float64(per), us)
	}
	fmt.Fprintf(&sb, "%-22s %10s %12.3f %7s %12.3f   (ops only; parenthesised rows are inside their op)\n",
		"total", "", top/float64(per), "", host/float64(per))
	return sb.String()
}
