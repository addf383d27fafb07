package engine

// Observers of the engine's progress (issue 16). The engine calls them
// from one place each; issue 8's restructuring re-homes them.

import "github.com/vellumlog/vellum/checkpoint"

// notifyCheckpoint hands a newly signed, durable checkpoint to
// Options.OnCheckpoint. (Hook called from signNow on the tree goroutine.)
func (e *Engine) notifyCheckpoint(s checkpoint.Signed) {
	if f := e.opts.OnCheckpoint; f != nil {
		f(s)
	}
}
