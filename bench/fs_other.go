//go:build !linux

package bench

import "errors"

// FSType names the file system of dir; it is known on Linux only.
func FSType(dir string) (string, error) {
	return "", errors.New("bench: file system type is known on Linux only")
}

// InMemoryFS reports whether dir is on a file system held in memory; it is
// known on Linux only.
func InMemoryFS(dir string) (bool, error) {
	return false, errors.New("bench: file system type is known on Linux only")
}
