package vfs

import (
	"errors"
	"io"
	"os"
)

// FS is the file-system surface the store needs. Paths use the host's
// separator; names in ReadDir are base names.
type FS interface {
	// Create creates name for appending writes and reads, failing if it
	// exists. WriteAt fails on it.
	Create(name string) (File, error)
	// OpenWrite opens an existing file for appending writes and reads.
	// WriteAt fails on it.
	OpenWrite(name string) (File, error)
	// OpenWriteAt opens an existing file for positional writes (WriteAt)
	// and reads: a preallocated file is written inside its length.
	OpenWriteAt(name string) (File, error)
	// Open opens an existing file read-only.
	Open(name string) (File, error)
	// Remove deletes a file.
	Remove(name string) error
	// Rename atomically replaces newname with oldname.
	Rename(oldname, newname string) error
	// MkdirAll creates a directory and its parents.
	MkdirAll(dir string, perm os.FileMode) error
	// ReadDir lists the names in dir, sorted.
	ReadDir(dir string) ([]string, error)
	// Stat describes a file.
	Stat(name string) (os.FileInfo, error)
	// Chmod changes a file's permission bits.
	Chmod(name string, mode os.FileMode) error
	// SyncDir makes the directory's entries (creations, renames, removals)
	// durable.
	SyncDir(dir string) error
	// Lock takes an exclusive advisory lock on name, creating it if needed,
	// and fails at once with ErrLocked if another holder has it.
	Lock(name string) (io.Closer, error)
}

// File is an open file. Write appends at the end (files from Create and
// OpenWrite); WriteAt writes at an offset (files from OpenWriteAt), which
// may lie inside the file: overwriting allocated bytes
// keeps the file's length, so an fdatasync after it need not commit a size.
type File interface {
	io.Writer
	io.WriterAt
	io.ReaderAt
	io.Closer
	// Sync makes every byte written so far durable (fdatasync).
	Sync() error
	// Truncate cuts the file to size bytes.
	Truncate(size int64) error
	// Size returns the file's current length.
	Size() (int64, error)
	// Name returns the path the file was opened with.
	Name() string
}

// ErrLocked reports that another process holds a lock.
var ErrLocked = errors.New("vfs: locked by another process")

// ErrInjected is the error returned by an operation a test made fail.
var ErrInjected = errors.New("vfs: injected failure")

// WriteFileAtomic replaces name with data durably: it writes a temporary
// file, syncs it, renames it over name and syncs the directory, so a crash
// leaves either the old or the new content, never a mix.
func WriteFileAtomic(fs FS, dir, name string, data []byte) error {
	tmp := name + ".tmp"
	fs.Remove(tmp)
	f, err := fs.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		fs.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		fs.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		fs.Remove(tmp)
		return err
	}
	if err := fs.Rename(tmp, name); err != nil {
		return err
	}
	return fs.SyncDir(dir)
}

// ReadFile reads a whole file.
func ReadFile(fs FS, name string) ([]byte, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}
