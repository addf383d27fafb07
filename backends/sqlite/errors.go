package sqlite

import "errors"

// ErrFull reports a database that cannot grow: the disk (or the file's
// size limit) is full. Nothing of the call was stored.
var ErrFull = errors.New("sqlite: database is full")
