package engine

import (
	"sort"
	"sync/atomic"
)

// notifier wakes whoever waits for new durable records (replication
// tailing the log): a channel closed at every publish (indexer.publish)
// and replaced on the next wait. Its zero value works.
type notifier struct {
	ch atomic.Pointer[chan struct{}]
}

func (n *notifier) wait() <-chan struct{} {
	for {
		if p := n.ch.Load(); p != nil {
			return *p
		}
		c := make(chan struct{})
		if n.ch.CompareAndSwap(nil, &c) {
			return c
		}
	}
}

func (n *notifier) wake() {
	if p := n.ch.Load(); p != nil && n.ch.CompareAndSwap(p, nil) {
		close(*p)
	}
}

// Published returns a channel that is closed once records published after
// this call become visible (LastSeq moves). Take the channel first, then
// read LastSeq, then wait: no wake-up is lost.
func (e *Engine) Published() <-chan struct{} { return e.index.notify.wait() }

// SegmentOf returns the number of the segment holding seq, or false when
// the store does not hold seq.
func (e *Engine) SegmentOf(seq uint64) (uint64, bool) {
	s := e.index.snapshot()
	if seq == 0 || seq < s.first || seq > s.last {
		return 0, false
	}
	// Not locate: for the active segment it copies the span list, which
	// a per-record lookup cannot afford.
	if a := s.active; a != nil && seq >= a.seg.hdr.FirstSeq {
		return a.seg.num, true
	}
	i := sort.Search(len(s.sealed), func(i int) bool { return lastSeqOf(s.sealed[i]) >= seq })
	if i == len(s.sealed) || s.sealed[i].hdr.FirstSeq > seq {
		return 0, false
	}
	return s.sealed[i].num, true
}
