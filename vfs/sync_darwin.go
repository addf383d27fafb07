package vfs

import (
	"errors"

	"golang.org/x/sys/unix"
)

// datasync is fcntl(F_FULLFSYNC): on macOS fsync(2) only hands the data to
// the drive, which may keep it in a volatile cache; F_FULLFSYNC asks the
// drive to flush it, which is what acknowledging a record promises. File
// systems that do not support it (some network and FUSE ones) answer
// ENOTSUP or EINVAL; fsync is the most they offer.
func datasync(fd int) error {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_FULLFSYNC, 0)
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EINVAL) {
		return unix.Fsync(fd)
	}
	return err
}
