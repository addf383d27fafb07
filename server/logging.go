package server

import (
	"io"
	"log/slog"
	"sync"
	"time"
)

// NewLogger returns the server's logger: log_format text (logfmt key=value
// lines) or json (one JSON object per line), at log_level, writing to w.
func NewLogger(w io.Writer, cfg *ServerConfig) *slog.Logger {
	o := &slog.HandlerOptions{Level: cfg.Level()}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

// LogWriter passes log lines to w in batches when they come fast: a line
// that follows the last write to w by less than LogFlushDelay is copied
// into a buffer, and the buffer goes to w at most LogFlushDelay later (at
// once when it holds 64 KiB), in order; a line after a quiet spell is
// written at once. With access_log all a server taking tens of thousands
// of one-event requests a second writes one line each, and a write(2) per
// line was a third of what the access log cost the server (issue 14's
// profile). A crash loses at most the last LogFlushDelay of lines; Close
// writes what is buffered. Safe for concurrent use.
type LogWriter struct {
	w    io.Writer
	kick chan struct{}
	done chan struct{}

	flushMu sync.Mutex // one write to w at a time, so lines keep their order
	mu      sync.Mutex
	buf     []byte
	spare   []byte
	last    time.Time // of the last write to w
	closed  bool
}

// LogFlushDelay bounds how long a LogWriter holds a line.
const LogFlushDelay = 10 * time.Millisecond

const logFlushSize = 64 << 10

// NewLogWriter starts a LogWriter for w; Close stops it.
func NewLogWriter(w io.Writer) *LogWriter {
	l := &LogWriter{w: w, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go l.loop()
	return l
}

// Write buffers p, or writes it at once after a quiet spell or after
// Close. It never fails: an error of w is w's to report.
func (l *LogWriter) Write(p []byte) (int, error) {
	now := time.Now()
	l.mu.Lock()
	quiet := l.closed || len(l.buf) == 0 && now.Sub(l.last) >= LogFlushDelay
	l.mu.Unlock()
	if quiet && l.writeNow(p, now) {
		return len(p), nil
	}
	l.mu.Lock()
	first := len(l.buf) == 0
	l.buf = append(l.buf, p...)
	full := len(l.buf) >= logFlushSize
	l.mu.Unlock()
	switch {
	case full:
		l.Flush()
	case first:
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// writeNow writes p to w, unless lines were buffered since Write looked
// (then p joins them, to keep the order).
func (l *LogWriter) writeNow(p []byte, now time.Time) bool {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	if !l.closed && len(l.buf) > 0 {
		l.mu.Unlock()
		return false
	}
	l.last = now
	l.mu.Unlock()
	l.w.Write(p)
	return true
}

// Flush writes what is buffered to w now.
func (l *LogWriter) Flush() {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	b := l.buf
	l.buf = l.spare[:0]
	l.mu.Unlock()
	if len(b) > 0 {
		l.w.Write(b)
	}
	l.mu.Lock()
	l.last = time.Now()
	if cap(b) <= 4*logFlushSize { // keep a normal buffer, not a burst's
		l.spare = b[:0]
	}
	l.mu.Unlock()
}

func (l *LogWriter) loop() {
	for {
		select {
		case <-l.kick:
			select {
			case <-time.After(LogFlushDelay):
			case <-l.done:
			}
			l.Flush()
		case <-l.done:
			return
		}
	}
}

// Close writes what is buffered and makes later writes go straight to w.
func (l *LogWriter) Close() error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true // later writes wait for flushMu, so they follow b
	b := l.buf
	l.buf, l.spare = nil, nil
	l.mu.Unlock()
	close(l.done)
	if len(b) > 0 {
		l.w.Write(b)
	}
	return nil
}
