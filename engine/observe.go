package engine

// Observers of the engine's progress (issue 16). The engine calls them
// from one place each; issue 8's restructuring re-homes them.

import (
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/merkle"
)

// notifyCheckpoint hands a newly signed, durable checkpoint, and the
// consistency proof signNow checked from the previous one (nil for the
// first), to Options.OnCheckpoint. (Hook called from signNow on the tree
// goroutine.)
func (e *Engine) notifyCheckpoint(s checkpoint.Signed, p *merkle.ConsistencyProof) {
	if f := e.opts.OnCheckpoint; f != nil {
		f(s, p)
	}
}
