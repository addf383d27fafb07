package engine

// Observers of the engine's progress (issue 16): the checkpointer calls
// this once per signed checkpoint (checkpoint.go, signNow).

import (
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/merkle"
)

// notifyCheckpoint hands a newly signed, durable checkpoint, and the
// consistency proof signNow checked from the previous one (nil for the
// first), to Options.OnCheckpoint, on the tree goroutine.
func notifyCheckpoint(o *Options, s checkpoint.Signed, p *merkle.ConsistencyProof) {
	if f := o.OnCheckpoint; f != nil {
		f(s, p)
	}
}
