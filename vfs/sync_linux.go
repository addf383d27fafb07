package vfs

import "golang.org/x/sys/unix"

// datasync is fdatasync(2): the file's data and the metadata needed to read
// it back (its size), not its timestamps.
func datasync(fd int) error { return unix.Fdatasync(fd) }
