package vfs

import (
	"fmt"
	"syscall"
)

// faults is a Mem's fault-injection state, guarded by Mem.mu. Each kind of
// operation has a counter of calls so far and at most one armed failure,
// given as the counter value whose call fails (0 when none is armed). As
// counters only grow, an armed failure fires once, like raft-wal's
// failNextWrite.
type faults struct {
	writes, syncs, creates          int   // calls so far
	failWrite, failSync, failCreate int   // call number that fails; 0: none
	shortWrite                      int   // bytes the failing write still appends
	capacity                        int64 // bytes the files may hold; <0: no limit
}

// errNoSpace is the disk-full error: it matches both ErrInjected and
// syscall.ENOSPC with errors.Is.
var errNoSpace = fmt.Errorf("%w: %w", ErrInjected, syscall.ENOSPC)

// armAt turns "the n-th call from now" into an absolute call number.
func armAt(done, n int) int {
	if n <= 0 {
		return 0
	}
	return done + n
}

// FailWrite makes the n-th File.Write or WriteAt from now (1-based, counting writes to
// every file of this Mem) fail with an error wrapping ErrInjected, having
// appended nothing. Later writes succeed again. n <= 0 disarms it. Writes
// on a closed or read-only File are not counted.
func (m *Mem) FailWrite(n int) { m.FailShortWrite(n, 0) }

// FailShortWrite is FailWrite, except that the failing write first appends
// the first keep bytes of its buffer (all of it if shorter) and reports
// that count, like a write(2) cut short by an I/O error.
func (m *Mem) FailShortWrite(n, keep int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.f.failWrite, m.f.shortWrite = armAt(m.f.writes, n), max(keep, 0)
}

// FailSync makes the n-th File.Sync or SyncDir from now (1-based, across
// the whole Mem) fail with an error wrapping ErrInjected. The failed call
// makes nothing durable. n <= 0 disarms it.
func (m *Mem) FailSync(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.f.failSync = armAt(m.f.syncs, n)
}

// FailCreate makes the n-th Create or Rename from now (1-based, counted
// together) fail with an error wrapping ErrInjected, changing nothing. Lock
// creating its file is not counted. n <= 0 disarms it.
func (m *Mem) FailCreate(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.f.failCreate = armAt(m.f.creates, n)
}

// SetCapacity limits the bytes all files linked in the Mem may hold
// together (the current content of every named file, each counted once).
// A write that would exceed it appends what fits and fails with an error
// matching both ErrInjected and syscall.ENOSPC. Removing or truncating
// files frees space. A negative capacity removes the limit.
func (m *Mem) SetCapacity(bytes int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.f.capacity = bytes
}

// SetSyncHook makes every File.Sync call fn with the file's name first,
// outside the Mem's lock, and take effect (or fail) only when fn returns:
// a test can hold an fsync open to see what a writer does meanwhile, or
// count fsyncs per file. SyncDir does not call it. nil removes the hook.
func (m *Mem) SetSyncHook(fn func(name string)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.syncHook = fn
}

// Writes returns how many File.Write calls the Mem has counted, including
// failed ones: a test runs a workload once, reads Writes, then reruns it
// with FailWrite(n) for each n up to that count.
func (m *Mem) Writes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.f.writes
}

// Syncs returns how many File.Sync and SyncDir calls the Mem has counted,
// including failed ones.
func (m *Mem) Syncs() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.f.syncs
}

// Creates returns how many Create and Rename calls the Mem has counted,
// including failed ones.
func (m *Mem) Creates() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.f.creates
}

// write counts a write of size bytes and returns how many of them to append
// and the error to report. The caller holds m.mu.
func (f *faults) write(m *Mem, size int) (int, error) {
	f.writes++
	if f.writes == f.failWrite {
		return min(f.shortWrite, size), ErrInjected
	}
	if f.capacity >= 0 {
		if free := f.capacity - m.used(); int64(size) > free {
			return int(max(free, 0)), errNoSpace
		}
	}
	return size, nil
}

// writeAt counts a positional write of size bytes that grows the file by
// growth of them and returns how many to write and the error to report.
// Only growth counts against the capacity. The caller holds m.mu.
func (f *faults) writeAt(m *Mem, size, growth int) (int, error) {
	f.writes++
	if f.writes == f.failWrite {
		return min(f.shortWrite, size), ErrInjected
	}
	if f.capacity >= 0 {
		if free := f.capacity - m.used(); int64(growth) > free {
			return max(size-growth+int(max(free, 0)), 0), errNoSpace
		}
	}
	return size, nil
}

// sync counts a File.Sync or SyncDir and returns its injected error, if any.
func (f *faults) sync() error {
	f.syncs++
	if f.syncs == f.failSync {
		return ErrInjected
	}
	return nil
}

// create counts a Create or Rename and returns its injected error, if any.
func (f *faults) create() error {
	f.creates++
	if f.creates == f.failCreate {
		return ErrInjected
	}
	return nil
}

// used returns the bytes held by linked files, each counted once. It walks
// every directory, which is fine for a test file system. The caller holds
// m.mu.
func (m *Mem) used() int64 {
	seen := map[*memNode]bool{}
	var total int64
	for _, d := range m.dirs {
		for _, n := range d.cur {
			if !seen[n] {
				seen[n] = true
				total += int64(len(n.data))
			}
		}
	}
	return total
}
