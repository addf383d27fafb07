//go:build !unix

package vfs

import (
	"errors"
	"io"
	"os"
	"runtime"
)

// errUnsupported is what every operation of Default returns where the
// store cannot keep its promises: it needs flock(2) for its directory lock
// and a durable fsync, which this build only has on Unix systems.
var errUnsupported = errors.New("vfs: Vellum stores data only on Linux, macOS and other Unix systems, not on " + runtime.GOOS)

// Default is the operating system's file system; on this platform every
// operation fails with a clear error.
var Default FS = unsupportedFS{}

type unsupportedFS struct{}

func (unsupportedFS) Create(string) (File, error)        { return nil, errUnsupported }
func (unsupportedFS) OpenWrite(string) (File, error)     { return nil, errUnsupported }
func (unsupportedFS) OpenWriteAt(string) (File, error)   { return nil, errUnsupported }
func (unsupportedFS) Open(string) (File, error)          { return nil, errUnsupported }
func (unsupportedFS) Remove(string) error                { return errUnsupported }
func (unsupportedFS) Rename(string, string) error        { return errUnsupported }
func (unsupportedFS) MkdirAll(string, os.FileMode) error { return errUnsupported }
func (unsupportedFS) ReadDir(string) ([]string, error)   { return nil, errUnsupported }
func (unsupportedFS) Stat(string) (os.FileInfo, error)   { return nil, errUnsupported }
func (unsupportedFS) Chmod(string, os.FileMode) error    { return errUnsupported }
func (unsupportedFS) SyncDir(string) error               { return errUnsupported }
func (unsupportedFS) Lock(string) (io.Closer, error)     { return nil, errUnsupported }
