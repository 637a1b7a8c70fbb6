package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/clipline/clipline/internal/atomicfile"
)

// ExitCoder is an error that chooses the process's exit status.
type ExitCoder interface {
	error
	ExitCode() int
}

// WithExitCode wraps err (non-nil) so that Main exits with code.
func WithExitCode(err error, code int) error { return &codeError{err, code} }

type codeError struct {
	err  error
	code int
}

func (e *codeError) Error() string { return e.err.Error() }
func (e *codeError) Unwrap() error { return e.err }
func (e *codeError) ExitCode() int { return e.code }

// ExitCode is the status Main exits with after err: 0 for nil, the code of
// the first ExitCoder in err's chain, else 1.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ec ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return 1
}

// Signal is the error (and context cause) of an interruption by SIGINT or
// SIGTERM; its exit status is the shell's 128 + signal number (130, 143).
type Signal struct{ Sig os.Signal }

func (s Signal) Error() string { return "interrupted by " + SignalName(s.Sig) }

func (s Signal) ExitCode() int {
	if n, ok := s.Sig.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 1
}

// SignalName is SIGINT, SIGTERM, ...
func SignalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// The signal handling of Main: a SIGINT or SIGTERM removes the temporaries
// of unfinished outputs (atomicfile.Track) and exits with Signal's status at
// once, unless a stage has asked for the first one (CatchInterrupt).
var interrupts struct {
	sync.Mutex
	cancel context.CancelCauseFunc // set while a stage catches the next signal
	notice string
	caught error // the caught signal, for Main's exit status
}

// handleSignals starts Main's handler for stage name.
func handleSignals(name string) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		for s := range ch {
			interrupts.Lock()
			cancel, notice := interrupts.cancel, interrupts.notice
			interrupts.cancel = nil // the next one ends the process
			if cancel != nil {
				interrupts.caught = Signal{s}
			}
			interrupts.Unlock()
			if cancel != nil {
				fmt.Fprintf(os.Stderr, "%s: %s: %s (again to stop at once)\n", name, SignalName(s), notice)
				cancel(Signal{s})
				continue
			}
			atomicfile.RemoveTemps()
			os.Exit(Signal{s}.ExitCode())
		}
	}()
}

// CatchInterrupt lets a stage finish its work on a signal instead of being
// ended by it: under Main, the first SIGINT or SIGTERM until stop is called
// prints "STAGE: SIGINT: notice" and cancels ctx with a Signal as its cause
// (context.Cause); a second signal ends the process at once. A stage that
// returns an error after the signal exits with the signal's status.
// Outside Main (tests calling a stage's run) signals are not caught.
func CatchInterrupt(parent context.Context, notice string) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	interrupts.Lock()
	interrupts.cancel, interrupts.notice = cancel, notice
	interrupts.Unlock()
	return ctx, func() {
		interrupts.Lock()
		interrupts.cancel = nil
		interrupts.Unlock()
		cancel(nil)
	}
}

// exitCode is Main's status after err: a caught signal's when err carries
// no code of its own.
func exitCode(err error) int {
	interrupts.Lock()
	caught := interrupts.caught
	interrupts.Unlock()
	var ec ExitCoder
	if err != nil && caught != nil && !errors.As(err, &ec) {
		return ExitCode(caught)
	}
	return ExitCode(err)
}
