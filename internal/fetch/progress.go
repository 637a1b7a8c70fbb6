package fetch

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/clipline/clipline/internal/cli"
)

// bar is a throttled progress line: bytes, percent, rate and ETA. On a
// terminal it redraws in place a few times a second; into a file or pipe it
// writes a plain line every few seconds so logs stay readable.
type bar struct {
	w       io.Writer
	label   string
	start   time.Time
	last    time.Time
	every   time.Duration
	tty     bool
	base, n int64 // base: bytes already on disk when this request began
	total   int64
	now     func() time.Time
}

func newBar(w io.Writer, label string, have, total int64) *bar {
	b := &bar{w: w, label: label, base: have, total: total, now: time.Now}
	if w == nil {
		return b
	}
	b.tty = cli.IsTerminal(w)
	b.every = 5 * time.Second
	if b.tty {
		b.every = 200 * time.Millisecond
	}
	b.start = b.now()
	b.last = b.start
	return b
}

// Write counts bytes passing through (the bar sits in an io.TeeReader).
func (b *bar) Write(p []byte) (int, error) {
	b.n += int64(len(p))
	if b.w == nil {
		return len(p), nil
	}
	if t := b.now(); t.Sub(b.last) >= b.every {
		b.last = t
		b.draw(false)
	}
	return len(p), nil
}

func (b *bar) draw(final bool) {
	elapsed := b.now().Sub(b.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(b.n) / elapsed
	}
	have := b.base + b.n
	var s strings.Builder
	s.WriteString(b.label)
	s.WriteString("  ")
	if b.total > 0 {
		pct := 100 * float64(have) / float64(b.total)
		fmt.Fprintf(&s, "%s / %s  %5.1f%%", humanBytes(have), humanBytes(b.total), pct)
	} else {
		s.WriteString(humanBytes(have))
	}
	fmt.Fprintf(&s, "  %.1f MB/s", rate/1e6)
	if b.total > 0 && !final {
		if rate > 0 {
			eta := time.Duration(float64(b.total-have) / rate * float64(time.Second))
			fmt.Fprintf(&s, "  ETA %s", eta.Round(time.Second))
		} else {
			s.WriteString("  ETA --")
		}
	}
	if final {
		fmt.Fprintf(&s, "  done in %s", time.Duration(elapsed*float64(time.Second)).Round(100*time.Millisecond))
	}
	if b.tty {
		fmt.Fprintf(b.w, "\r\033[K%s", s.String())
		if final {
			fmt.Fprintln(b.w)
		}
	} else {
		fmt.Fprintln(b.w, s.String())
	}
}

// finish prints the final state once.
func (b *bar) finish() {
	if b.w == nil {
		return
	}
	b.draw(true)
}

func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.2f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
