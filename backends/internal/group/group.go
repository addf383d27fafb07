// Package group is the group commit the SQL stores share: concurrent
// callers hand in their records, one goroutine commits everything waiting in
// one transaction, and each caller is released with its own seqs once that
// transaction is durable.
//
// A Committer is safe for concurrent use.
package group

import (
	"context"
	"errors"
	"sync"
)

// ErrClosed is returned by Do after Close.
var ErrClosed = errors.New("group: closed")

// Commit commits the calls of one group (in arrival order) in one
// transaction and returns each call's seqs, or an error that fails every
// call of the group.
type Commit[T any] func(calls [][]T) ([][]uint64, error)

type call[T any] struct {
	items []T
	seqs  []uint64
	err   error
	done  chan struct{}
}

// Committer runs one commit goroutine. The zero value is not usable; use
// New.
type Committer[T any] struct {
	commit   Commit[T]
	maxItems int

	mu      sync.Mutex
	wake    *sync.Cond
	pending []*call[T]
	items   int
	closed  bool
	done    chan struct{}
}

// New starts a committer that gathers at most maxItems items per group
// (a single larger call still goes alone); callers wait while a group is
// full, which bounds memory.
func New[T any](maxItems int, commit Commit[T]) *Committer[T] {
	c := &Committer[T]{commit: commit, maxItems: maxItems, done: make(chan struct{})}
	c.wake = sync.NewCond(&c.mu)
	go c.run()
	return c
}

// Do commits items with whatever else is waiting, and returns their seqs
// once durable. If ctx ends first it returns ctx.Err() and the items may or
// may not be committed.
func (c *Committer[T]) Do(ctx context.Context, items []T) ([]uint64, error) {
	cl := &call[T]{items: items, done: make(chan struct{})}
	c.mu.Lock()
	for !c.closed && c.items > 0 && c.items+len(items) > c.maxItems {
		c.wake.Wait()
	}
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.pending = append(c.pending, cl)
	c.items += len(items)
	c.wake.Broadcast()
	c.mu.Unlock()
	select {
	case <-cl.done:
		return cl.seqs, cl.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *Committer[T]) run() {
	defer close(c.done)
	for {
		c.mu.Lock()
		for len(c.pending) == 0 && !c.closed {
			c.wake.Wait()
		}
		if len(c.pending) == 0 && c.closed {
			c.mu.Unlock()
			return
		}
		g := c.pending
		c.pending, c.items = nil, 0
		c.wake.Broadcast() // room for callers waiting on a full group
		c.mu.Unlock()

		calls := make([][]T, len(g))
		for i, cl := range g {
			calls[i] = cl.items
		}
		seqs, err := c.commit(calls)
		for i, cl := range g {
			if err != nil {
				cl.err = err
			} else {
				cl.seqs = seqs[i]
			}
			close(cl.done)
		}
	}
}

// Close commits what callers already handed in, then stops; Do fails with
// ErrClosed afterwards. It is safe to call more than once.
func (c *Committer[T]) Close() {
	c.mu.Lock()
	c.closed = true
	c.wake.Broadcast()
	c.mu.Unlock()
	<-c.done
}
