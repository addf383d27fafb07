package vfs

import (
	"errors"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

// crashBlock is the granularity, in bytes, at which Crash keeps or drops
// unsynced data: one disk sector, aligned to file offsets.
const crashBlock = 512

// Mem is an in-memory FS that models durability the way a careful reading
// of POSIX (and ext4 with delayed allocation) allows:
//
//   - File.Sync makes a file's whole current content durable (fdatasync).
//   - Creating, renaming and removing a name becomes durable only when
//     SyncDir is called on the parent directory; until then Crash undoes it.
//   - Directories themselves are durable as soon as MkdirAll returns, and
//     Remove of an empty directory and Chmod are durable at once. This is a
//     simplification: on a real disk they too need a SyncDir of the parent,
//     so code must not rely on it.
//
// Crash and CrashKeepPrefix return what a power loss would leave;
// FailWrite, FailSync, FailCreate and SetCapacity fail chosen operations;
// SetSyncHook holds fsyncs open or counts them. Paths are cleaned with
// filepath.Clean, so "d/./f" and "d/f" name the same file; "." and "/" are
// the roots and always exist.
//
// A Mem is safe for concurrent use. Its zero value is not usable: call
// NewMem.
type Mem struct {
	mu       sync.Mutex
	dirs     map[string]*memDir // by cleaned path
	locks    map[string]bool    // cleaned names held by Lock
	f        faults             // see fault.go
	syncHook func(name string)  // see SetSyncHook; guarded by mu
}

var _ FS = (*Mem)(nil)

// memDir is a directory: its current entries and the entries a crash keeps.
type memDir struct {
	cur, durable map[string]*memNode
	mode         os.FileMode
}

// memNode is a file's inode. Bytes that durable shares are never changed in
// place: Write appends, and Truncate and a WriteAt inside the durable length
// copy data first, so durable may alias data.
type memNode struct {
	data    []byte // current content
	durable []byte // content that survives a crash
	clean   int    // data[:clean] == durable[:clean]; data[clean:] is unsynced
	ends    []int  // end offsets of the writes in data[clean:], ascending
	shrunk  bool   // truncated below the durable length since the last sync
	mode    os.FileMode
}

// NewMem returns an empty in-memory file system holding only the roots "."
// and "/", with no capacity limit and no faults armed.
func NewMem() *Mem {
	m := &Mem{dirs: map[string]*memDir{}, locks: map[string]bool{}, f: faults{capacity: -1}}
	m.dirs["."] = newMemDir(0o755)
	m.dirs["/"] = newMemDir(0o755)
	return m
}

func newMemDir(mode os.FileMode) *memDir {
	return &memDir{cur: map[string]*memNode{}, durable: map[string]*memNode{}, mode: mode.Perm()}
}

func pathErr(op, name string, err error) error { return &os.PathError{Op: op, Path: name, Err: err} }

// entry returns the parent directory of name and name's base. It fails with
// ENOENT if the parent does not exist. The caller holds m.mu.
func (m *Mem) entry(op, name string) (*memDir, string, error) {
	p := filepath.Clean(name)
	d := m.dirs[filepath.Dir(p)]
	if d == nil {
		return nil, "", pathErr(op, name, syscall.ENOENT)
	}
	return d, filepath.Base(p), nil
}

// file returns the current inode of name. The caller holds m.mu.
func (m *Mem) file(op, name string) (*memNode, error) {
	d, base, err := m.entry(op, name)
	if err != nil {
		return nil, err
	}
	if n := d.cur[base]; n != nil {
		return n, nil
	}
	if m.dirs[filepath.Clean(name)] != nil {
		return nil, pathErr(op, name, syscall.EISDIR)
	}
	return nil, pathErr(op, name, syscall.ENOENT)
}

// Create creates name with mode 0640 for appending writes and reads,
// failing with an error satisfying errors.Is(err, os.ErrExist) if it
// exists. The new name is not durable until SyncDir of its directory.
func (m *Mem) Create(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.f.create(); err != nil {
		return nil, pathErr("open", name, err)
	}
	d, base, err := m.entry("open", name)
	if err != nil {
		return nil, err
	}
	if d.cur[base] != nil || m.dirs[filepath.Clean(name)] != nil {
		return nil, pathErr("open", name, syscall.EEXIST)
	}
	n := &memNode{mode: 0o640}
	d.cur[base] = n
	return &memFile{m: m, n: n, name: name, write: true}, nil
}

// OpenWrite opens an existing file for appending writes and reads. It fails
// with a permission error (os.ErrPermission) unless the file's mode has the
// owner read and write bits. WriteAt fails on it, as on an O_APPEND file.
func (m *Mem) OpenWrite(name string) (File, error) { return m.open(name, true, false) }

// OpenWriteAt opens an existing file for positional writes (WriteAt) and
// reads, with the same permission check as OpenWrite.
func (m *Mem) OpenWriteAt(name string) (File, error) { return m.open(name, true, true) }

// Open opens an existing file read-only; the owner read bit must be set.
func (m *Mem) Open(name string) (File, error) { return m.open(name, false, false) }

func (m *Mem) open(name string, write, at bool) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.file("open", name)
	if err != nil {
		return nil, err
	}
	need := os.FileMode(0o400)
	if write {
		need = 0o600
	}
	if n.mode&need != need {
		return nil, pathErr("open", name, syscall.EACCES)
	}
	return &memFile{m: m, n: n, name: name, write: write, at: at}, nil
}

// Remove deletes a file or an empty directory. Removing a file is durable
// only after SyncDir of its directory; until then Crash brings it back.
// Open files stay usable, as on Unix.
func (m *Mem) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, base, err := m.entry("remove", name)
	if err != nil {
		return err
	}
	if d.cur[base] != nil {
		delete(d.cur, base)
		return nil
	}
	p := filepath.Clean(name)
	dir := m.dirs[p]
	switch {
	case dir == nil:
		return pathErr("remove", name, syscall.ENOENT)
	case p == "." || p == "/":
		return pathErr("remove", name, syscall.EBUSY)
	case len(dir.cur) > 0 || len(m.subdirs(p)) > 0:
		return pathErr("remove", name, syscall.ENOTEMPTY)
	}
	delete(m.dirs, p)
	return nil
}

// Rename atomically replaces newname with the file oldname. Each directory
// involved must be synced for its side of the rename to be durable: a
// crash before SyncDir reverts it. Renaming directories is not supported.
func (m *Mem) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	lerr := func(err error) error { return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err} }
	if err := m.f.create(); err != nil {
		return lerr(err)
	}
	od, ob, err := m.entry("rename", oldname)
	if err != nil {
		return lerr(syscall.ENOENT)
	}
	n := od.cur[ob]
	if n == nil {
		if m.dirs[filepath.Clean(oldname)] != nil {
			return lerr(errors.New("vfs: mem: renaming directories is not supported"))
		}
		return lerr(syscall.ENOENT)
	}
	nd, nb, err := m.entry("rename", newname)
	if err != nil {
		return lerr(syscall.ENOENT)
	}
	if m.dirs[filepath.Clean(newname)] != nil {
		return lerr(syscall.EISDIR)
	}
	delete(od.cur, ob)
	nd.cur[nb] = n
	return nil
}

// MkdirAll creates dir and any missing parents with mode perm. Directories
// are durable at once (see Mem).
func (m *Mem) MkdirAll(dir string, perm os.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mkdirAll(dir, filepath.Clean(dir), perm)
}

func (m *Mem) mkdirAll(name, p string, perm os.FileMode) error {
	if m.dirs[p] != nil {
		return nil
	}
	parent := filepath.Dir(p)
	if err := m.mkdirAll(name, parent, perm); err != nil {
		return err
	}
	if m.dirs[parent].cur[filepath.Base(p)] != nil {
		return pathErr("mkdir", name, syscall.ENOTDIR)
	}
	m.dirs[p] = newMemDir(perm)
	return nil
}

// subdirs returns the base names of the directories directly inside p.
func (m *Mem) subdirs(p string) []string {
	var names []string
	for q := range m.dirs {
		if q != p && filepath.Dir(q) == p {
			names = append(names, filepath.Base(q))
		}
	}
	return names
}

// ReadDir lists the files and directories in dir, sorted.
func (m *Mem) ReadDir(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := filepath.Clean(dir)
	d := m.dirs[p]
	if d == nil {
		return nil, pathErr("open", dir, syscall.ENOENT)
	}
	names := append(m.subdirs(p), slices.Collect(maps.Keys(d.cur))...)
	slices.Sort(names)
	return names, nil
}

// Stat describes a file or directory. ModTime is always the zero time.
func (m *Mem) Stat(name string) (os.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := filepath.Clean(name)
	if d := m.dirs[p]; d != nil {
		return memInfo{filepath.Base(p), 0, os.ModeDir | d.mode}, nil
	}
	n, err := m.file("stat", name)
	if err != nil {
		return nil, err
	}
	return memInfo{filepath.Base(p), int64(len(n.data)), n.mode}, nil
}

// Chmod changes the permission bits of a file or directory. Files already
// open keep the access they were opened with.
func (m *Mem) Chmod(name string, mode os.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d := m.dirs[filepath.Clean(name)]; d != nil {
		d.mode = mode.Perm()
		return nil
	}
	n, err := m.file("chmod", name)
	if err != nil {
		return err
	}
	n.mode = mode.Perm()
	return nil
}

// SyncDir makes dir's current entries durable: files created or renamed
// into it survive a crash from now on, and names removed from it stay gone.
// It counts as a sync for FailSync.
func (m *Mem) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.f.sync(); err != nil {
		return pathErr("sync", dir, err)
	}
	d := m.dirs[filepath.Clean(dir)]
	if d == nil {
		if _, err := m.file("sync", dir); err != nil {
			return err
		}
		return pathErr("sync", dir, syscall.ENOTDIR)
	}
	d.durable = maps.Clone(d.cur)
	return nil
}

// Lock takes an exclusive lock on name within this Mem, creating the file
// if needed, and fails with ErrLocked while another holder has it. Closing
// the returned Closer releases it.
func (m *Mem) Lock(name string) (io.Closer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, base, err := m.entry("open", name)
	if err != nil {
		return nil, err
	}
	p := filepath.Clean(name)
	if m.locks[p] {
		return nil, pathErr("lock", name, ErrLocked)
	}
	if d.cur[base] == nil {
		if m.dirs[p] != nil {
			return nil, pathErr("open", name, syscall.EISDIR)
		}
		d.cur[base] = &memNode{mode: 0o640}
	}
	m.locks[p] = true
	return &memLock{m: m, name: p}, nil
}

type memLock struct {
	m    *Mem
	name string
	done bool
}

func (l *memLock) Close() error {
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	if l.done {
		return pathErr("close", l.name, os.ErrClosed)
	}
	l.done = true
	delete(l.m.locks, l.name)
	return nil
}

// Crash returns a new Mem holding what a power loss would leave of m, which
// is not changed. Only durable directory entries survive. Each surviving
// file holds its synced bytes, then, if rng is not nil, a random share of
// its unsynced bytes: each 512-byte block (aligned to file offsets) of
// unsynced data is kept or dropped with equal odds, the file ends where the
// last kept block ends, and dropped blocks before it read as zeros, as ext4
// with delayed allocation can show. Bytes written in place (WriteAt) over
// synced content are kept or dropped the same way, a dropped block reading
// as what was synced there, and the file keeps at least its synced length.
// If no block is kept, the file is exactly its synced content, including
// length (an unsynced Truncate is undone). A nil rng drops all unsynced
// data. The same rng seed on the same Mem gives
// the same result.
//
// The new Mem has m's capacity but no locks held and no faults armed.
func (m *Mem) Crash(rng *rand.Rand) *Mem { return m.crash(rng, false) }

// CrashKeepPrefix is Crash, except that each file keeps its synced bytes
// plus a random prefix (possibly empty, possibly all) of its unsynced
// bytes: a torn tail, the common case recovery must handle. Half the time
// the tail is cut between two writes, so that recovery also meets files
// that end cleanly on a record boundary; otherwise at a uniformly random
// byte.
func (m *Mem) CrashKeepPrefix(rng *rand.Rand) *Mem { return m.crash(rng, true) }

func (m *Mem) crash(rng *rand.Rand, prefix bool) *Mem {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := NewMem()
	c.f.capacity = m.f.capacity
	clones := map[*memNode]*memNode{} // a node renamed across dirs may be in two
	for _, p := range slices.Sorted(maps.Keys(m.dirs)) {
		d := m.dirs[p]
		cd := newMemDir(d.mode)
		for _, name := range slices.Sorted(maps.Keys(d.durable)) {
			n := d.durable[name]
			cn := clones[n]
			if cn == nil {
				data := n.crashData(rng, prefix)
				cn = &memNode{data: data, durable: data[:len(data):len(data)], clean: len(data), mode: n.mode}
				clones[n] = cn
			}
			cd.cur[name], cd.durable[name] = cn, cn
		}
		c.dirs[p] = cd
	}
	return c
}

// crashData returns a fresh copy of what a crash leaves of n's content.
// Unsynced bytes survive in kept ranges. Over the synced content they
// overlay it, and the file keeps at least its synced length (fdatasync
// committed it, and overwriting allocated bytes does not change it): a
// preallocated file written in place keeps its zero tail and its dropped
// blocks read as what was synced there. After a truncate below the synced
// length, kept bytes follow the cut instead, as before any overwrite.
func (n *memNode) crashData(rng *rand.Rand, prefix bool) []byte {
	if rng == nil || len(n.data) == n.clean {
		return slices.Clone(n.durable)
	}
	type span struct{ from, to int }
	var kept []span // absolute offsets, ascending
	if prefix {
		keep := 0
		if rng.IntN(2) == 0 {
			if i := rng.IntN(len(n.ends) + 1); i > 0 {
				keep = n.ends[i-1] - n.clean
			}
		} else {
			keep = rng.IntN(len(n.data) - n.clean + 1)
		}
		if keep > 0 {
			kept = append(kept, span{n.clean, n.clean + keep})
		}
	} else {
		for off := n.clean; off < len(n.data); {
			end := min((off/crashBlock+1)*crashBlock, len(n.data))
			if rng.IntN(2) != 0 {
				kept = append(kept, span{off, end})
			}
			off = end
		}
	}
	if len(kept) == 0 {
		return slices.Clone(n.durable)
	}
	last := kept[len(kept)-1].to
	var out []byte
	if n.shrunk {
		out = slices.Clone(n.data[:n.clean])
	} else {
		out = slices.Clone(n.durable)
	}
	if len(out) < last {
		out = append(out, make([]byte, last-len(out))...)
	}
	for _, k := range kept {
		copy(out[k.from:k.to], n.data[k.from:k.to])
	}
	if n.shrunk {
		out = out[:last]
	}
	return out
}

type memInfo struct {
	name string
	size int64
	mode os.FileMode
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() os.FileMode  { return i.mode }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return i.mode.IsDir() }
func (i memInfo) Sys() any           { return nil }

// memFile is an open file of a Mem. Its state is guarded by m.mu.
type memFile struct {
	m      *Mem
	n      *memNode
	name   string
	write  bool
	at     bool // opened by OpenWriteAt: WriteAt allowed
	closed bool
}

// check locks m.mu and reports os.ErrClosed if f is closed. On success the
// caller must unlock.
func (f *memFile) check(op string) error {
	f.m.mu.Lock()
	if f.closed {
		f.m.mu.Unlock()
		return pathErr(op, f.name, os.ErrClosed)
	}
	return nil
}

func (f *memFile) Write(p []byte) (int, error) {
	if err := f.check("write"); err != nil {
		return 0, err
	}
	defer f.m.mu.Unlock()
	if !f.write {
		return 0, pathErr("write", f.name, syscall.EBADF)
	}
	k, err := f.m.f.write(f.m, len(p))
	f.n.data = append(f.n.data, p[:k]...)
	f.n.ends = append(f.n.ends, len(f.n.data))
	if err != nil {
		return k, pathErr("write", f.name, err)
	}
	return k, nil
}

// WriteAt writes p at off, zero-filling any gap after the end. Inside the
// synced length it overwrites in place (the length stays); a crash before
// the next Sync keeps each unsynced block or the bytes synced there (see
// Crash). It counts as a write for FailWrite; only growth counts against
// the capacity.
func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.check("write"); err != nil {
		return 0, err
	}
	defer f.m.mu.Unlock()
	if !f.write || !f.at {
		return 0, pathErr("write", f.name, syscall.EBADF)
	}
	if off < 0 {
		return 0, pathErr("writeat", f.name, syscall.EINVAL)
	}
	n := f.n
	o := int(off)
	growth := max(0, o+len(p)-len(n.data))
	k, err := f.m.f.writeAt(f.m, len(p), growth)
	if k > 0 {
		if o < len(n.durable) {
			n.data = slices.Clone(n.data) // durable may share these bytes
		}
		if end := o + k; end > len(n.data) {
			n.data = append(n.data, make([]byte, end-len(n.data))...)
		}
		copy(n.data[o:], p[:k])
		n.clean = min(n.clean, o)
		end := o + k
		if i, found := slices.BinarySearch(n.ends, end); !found {
			n.ends = slices.Insert(n.ends, i, end)
		}
	}
	if err != nil {
		return k, pathErr("write", f.name, err)
	}
	return k, nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.check("read"); err != nil {
		return 0, err
	}
	defer f.m.mu.Unlock()
	if off < 0 {
		return 0, pathErr("readat", f.name, syscall.EINVAL)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	k := copy(p, f.n.data[off:])
	if k < len(p) {
		return k, io.EOF
	}
	return k, nil
}

func (f *memFile) Sync() error {
	f.m.mu.Lock()
	hook := f.m.syncHook
	f.m.mu.Unlock()
	if hook != nil {
		hook(f.name) // a slow disk: the bytes become durable when it returns
	}
	if err := f.check("sync"); err != nil {
		return err
	}
	defer f.m.mu.Unlock()
	if err := f.m.f.sync(); err != nil {
		return pathErr("sync", f.name, err)
	}
	n := f.n
	n.durable, n.clean, n.ends, n.shrunk = n.data[:len(n.data):len(n.data)], len(n.data), nil, false
	return nil
}

func (f *memFile) Truncate(size int64) error {
	if err := f.check("truncate"); err != nil {
		return err
	}
	defer f.m.mu.Unlock()
	if size < 0 || !f.write {
		return pathErr("truncate", f.name, syscall.EINVAL)
	}
	n := f.n
	if s := int(size); s <= len(n.data) {
		n.data = slices.Clone(n.data[:s]) // a copy: durable may alias the old bytes
		n.shrunk = n.shrunk || s < len(n.durable)
		n.clean = min(n.clean, s)
		n.ends = slices.DeleteFunc(n.ends, func(e int) bool { return e > s })
	} else {
		n.data = append(n.data, make([]byte, s-len(n.data))...)
		n.ends = append(n.ends, s)
	}
	return nil
}

func (f *memFile) Size() (int64, error) {
	if err := f.check("stat"); err != nil {
		return 0, err
	}
	defer f.m.mu.Unlock()
	return int64(len(f.n.data)), nil
}

func (f *memFile) Name() string { return f.name }

func (f *memFile) Close() error {
	if err := f.check("close"); err != nil {
		return err
	}
	defer f.m.mu.Unlock()
	f.closed = true
	return nil
}
