//go:build linux

package bench

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// File system magic numbers of statfs(2) (linux/magic.h) that benchmarks
// name. Values from the kernel's ABI.
var fsNames = map[int64]string{
	unix.TMPFS_MAGIC:           "tmpfs",
	unix.RAMFS_MAGIC:           "ramfs",
	unix.EXT4_SUPER_MAGIC:      "ext4", // ext2/ext3/ext4 share the magic
	unix.XFS_SUPER_MAGIC:       "xfs",
	unix.BTRFS_SUPER_MAGIC:     "btrfs",
	unix.OVERLAYFS_SUPER_MAGIC: "overlayfs",
	unix.NFS_SUPER_MAGIC:       "nfs",
	unix.F2FS_SUPER_MAGIC:      "f2fs",
}

// FSType names the file system dir is on (statfs magic), such as "ext4"
// or "tmpfs"; an unknown one as its magic in hex. The benchmarks print it
// so that a number measured on tmpfs, where fsync costs nothing, is never
// mistaken for a disk's.
func FSType(dir string) (string, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return "", fmt.Errorf("bench: statfs %s: %w", dir, err)
	}
	if n, ok := fsNames[int64(st.Type)]; ok {
		return n, nil
	}
	return fmt.Sprintf("fs-magic-%#x", st.Type), nil
}

// InMemoryFS reports whether dir is on a file system without a disk
// behind it (tmpfs, ramfs), where fsync returns at once.
func InMemoryFS(dir string) (bool, error) {
	t, err := FSType(dir)
	return t == "tmpfs" || t == "ramfs", err
}
