//go:build !cgo

package sqlite

import "fmt"

// classify names the backend, the file and what was being done. Without
// cgo the SQLite driver opens nothing (its error says it needs cgo), so
// there are no SQLite result codes to tell apart.
func classify(err error, path, doing string) error {
	return fmt.Errorf("sqlite: %s: %s: %w", path, doing, err)
}
