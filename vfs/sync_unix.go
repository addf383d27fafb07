//go:build unix && !linux && !darwin

package vfs

import "golang.org/x/sys/unix"

// datasync is fsync(2), which every Unix has.
func datasync(fd int) error { return unix.Fsync(fd) }
