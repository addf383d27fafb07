package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// atomicFile is an output file that appears only when complete: written to
// a temporary file beside it, fsync'd, and moved into place by Commit, which
// refuses to replace an existing file. Abort (or a failed Commit) removes
// the temporary file, so an error never leaves a partial or empty output.
type atomicFile struct {
	*os.File
	path string
}

func newAtomicFile(path string, mode os.FileMode) (*atomicFile, error) {
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("%s already exists; choose another --out or remove it", path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &atomicFile{File: f, path: path}, nil
}

// Abort removes the temporary file.
func (a *atomicFile) Abort() {
	a.File.Close()
	os.Remove(a.File.Name())
}

// Commit syncs the temporary file and moves it to its path, failing if a
// file appeared there meanwhile.
func (a *atomicFile) Commit() error {
	tmp := a.File.Name()
	defer os.Remove(tmp)
	if err := a.File.Sync(); err != nil {
		a.File.Close()
		return err
	}
	if err := a.File.Close(); err != nil {
		return err
	}
	// A hard link does not replace an existing file; fall back to rename
	// where the file system has no links.
	err := os.Link(tmp, a.path)
	switch {
	case errors.Is(err, os.ErrExist):
		return fmt.Errorf("%s already exists; choose another --out or remove it", a.path)
	case err != nil:
		if _, serr := os.Lstat(a.path); serr == nil {
			return fmt.Errorf("%s already exists; choose another --out or remove it", a.path)
		}
		if err := os.Rename(tmp, a.path); err != nil {
			return err
		}
	}
	if d, err := os.Open(filepath.Dir(a.path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
