package main

import (
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows a bar for a long operation (verify, export, report) on
// stderr when stderr is a terminal, and nothing when it is piped or
// redirected, so scripts and logs stay clean. It uses
// schollz/progressbar rather than hand-written escape codes. Safe for
// concurrent use; the zero-output form costs nothing.
type progress struct {
	mu  sync.Mutex
	bar *progressbar.ProgressBar
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newProgress returns a bar on w titled desc, counting bytes (units
// "bytes") or items, shown only when w is a terminal.
func newProgress(w io.Writer, desc string, bytes bool) *progress {
	return newProgressOn(w, desc, bytes, isTerminal(w))
}

// newProgressOn is newProgress with the terminal decision made by the
// caller (tests).
func newProgressOn(w io.Writer, desc string, bytes, on bool) *progress {
	if !on {
		return &progress{}
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetPredictTime(true),
	}
	if bytes {
		opts = append(opts, progressbar.OptionShowBytes(true), progressbar.OptionUseIECUnits(true))
	} else {
		opts = append(opts, progressbar.OptionShowCount())
	}
	return &progress{bar: progressbar.NewOptions64(-1, opts...)}
}

// update sets how much of total is done.
func (p *progress) update(done, total int64) {
	if p.bar == nil || total <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar.GetMax64() != total {
		p.bar.ChangeMax64(total)
	}
	p.bar.Set64(done)
}

// done clears the bar.
func (p *progress) done() {
	if p.bar == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bar.Finish()
	p.bar.Clear()
}
