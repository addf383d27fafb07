//go:build cgo

package sqlite

import (
	"errors"
	"fmt"

	"github.com/mattn/go-sqlite3"

	"github.com/vellumlog/vellum/backends"
)

// classify turns a driver error into one that names the backend, the file,
// what was being done and what to do about it.
func classify(err error, path, doing string) error {
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrFull:
			return fmt.Errorf("%w: %s: %s: the disk or the database's size limit is full; free space and retry (nothing of this call was stored): %w", ErrFull, path, doing, err)
		case sqlite3.ErrCantOpen:
			return fmt.Errorf("%w: sqlite: cannot open %s (%s): check that its directory exists and is writable by this user: %w", backends.ErrUnavailable, path, doing, err)
		case sqlite3.ErrPerm, sqlite3.ErrReadonly, sqlite3.ErrAuth:
			return fmt.Errorf("%w: sqlite: %s is not writable (%s): check the file's and directory's permissions: %w", backends.ErrUnavailable, path, doing, err)
		case sqlite3.ErrNotADB:
			return fmt.Errorf("%w: sqlite: %s is not a SQLite database (%s): point audit.sqlite.path at a new file or a Vellum database: %w", backends.ErrSchema, path, doing, err)
		case sqlite3.ErrCorrupt:
			return fmt.Errorf("sqlite: %s is corrupt (%s): restore it from a backup; verify with `vellum verify --sqlite`: %w", path, doing, err)
		case sqlite3.ErrBusy, sqlite3.ErrLocked:
			return fmt.Errorf("sqlite: %s is locked by another writer (%s): run one vellum process per file: %w", path, doing, err)
		}
	}
	return fmt.Errorf("sqlite: %s: %s: %w", path, doing, err)
}
