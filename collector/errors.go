package collector

import "errors"

// Sentinel errors of the collector; the wrapped message says more.
var (
	// ErrNotDurable is what a fail_closed stream yields when a step's
	// records could not be made durable within Options.Timeout: the step
	// is not released and the stream ends.
	ErrNotDurable = errors.New("collector: audit record not durable")
	// ErrClosed reports a collector used after Close.
	ErrClosed = errors.New("collector: closed")
	// ErrOptions reports options that cannot work, such as fail_open
	// without a spill file.
	ErrOptions = errors.New("collector: invalid options")
)
