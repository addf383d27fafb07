package collector

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/vellumlog/vellum/vfs"
)

// Policy is what the collector does when the store cannot make records
// durable (NIST SP 800-53 AU-5).
type Policy string

// The failure policies.
const (
	// FailClosed releases a step only once its records are durable; if
	// they cannot be made durable within Options.Timeout, the stream
	// yields ErrNotDurable and ends. The default.
	FailClosed Policy = "fail_closed"
	// FailOpen lets the agent go on: records are written in the
	// background; while the store fails they wait in a bounded spill file
	// and are replayed, in order and once, when it recovers. Failures are
	// counted and logged (Stats); a full spill drops records explicitly:
	// counted, logged and, once the store recovers, recorded as an
	// "audit.dropped" record.
	FailOpen Policy = "fail_open"
)

// Defaults of Options.
const (
	DefaultTimeout         = 5 * time.Second
	DefaultSpillMaxBytes   = 64 << 20
	DefaultSpillMaxRecords = 50_000
	DefaultQueue           = 4096
	DefaultRetryInterval   = time.Second
)

// Options configure a collector. The zero value is fail_closed with a
// 5-second bound.
type Options struct {
	// Policy is FailClosed (the default) or FailOpen.
	Policy Policy
	// Timeout bounds each append to the store: in fail_closed how long
	// a step may wait for its records to be durable; in fail_open how
	// long the background writer waits before it spills.
	Timeout time.Duration
	// SpillPath is the spill file of fail_open (required there; refused
	// with fail_closed, which never spills).
	SpillPath string
	// SpillMaxBytes and SpillMaxRecords bound the spill file. Keep
	// SpillMaxRecords at most the store's deduplication window
	// (engine.Options.DedupEntries, 100,000 by default), so that a replay
	// cut short by a crash and started again stores each record once.
	SpillMaxBytes   int64
	SpillMaxRecords int
	// Queue bounds the steps' records waiting for the background writer
	// in fail_open; a full queue makes the stream wait for it.
	Queue int
	// RetryInterval is how often fail_open tries the store again while
	// records wait in the spill.
	RetryInterval time.Duration
	// FS holds the spill file; nil means the operating system's.
	FS vfs.FS
	// Logger receives failures and spill events, never record contents.
	// Nil discards logs.
	Logger *slog.Logger
	// Now is the clock for steps without a time; nil means time.Now.
	Now func() time.Time
}

func (o *Options) setDefaults() {
	if o.Policy == "" {
		o.Policy = FailClosed
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.SpillMaxBytes == 0 {
		o.SpillMaxBytes = DefaultSpillMaxBytes
	}
	if o.SpillMaxRecords == 0 {
		o.SpillMaxRecords = DefaultSpillMaxRecords
	}
	if o.Queue == 0 {
		o.Queue = DefaultQueue
	}
	if o.RetryInterval == 0 {
		o.RetryInterval = DefaultRetryInterval
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

func (o *Options) validate() error {
	switch o.Policy {
	case FailClosed:
		if o.SpillPath != "" {
			return fmt.Errorf("%w: spill path is set but the policy is fail_closed, which never spills", ErrOptions)
		}
	case FailOpen:
		if o.SpillPath == "" {
			return fmt.Errorf("%w: fail_open needs a spill path", ErrOptions)
		}
	default:
		return fmt.Errorf("%w: policy %q is not fail_closed or fail_open", ErrOptions, o.Policy)
	}
	if o.Timeout < 0 || o.SpillMaxBytes < 0 || o.SpillMaxRecords < 0 || o.Queue < 0 || o.RetryInterval < 0 {
		return fmt.Errorf("%w: negative timeout, spill bound, queue or retry interval", ErrOptions)
	}
	return nil
}
