// Package vfs is the small file-system interface through which the segment
// and engine packages do all their I/O, so tests can crash the disk and fail
// chosen operations. Default is the operating system; NewMem returns an
// in-memory file system that models what survives a crash (only synced
// bytes, plus a random share of unsynced blocks) and can fail the Nth write
// or sync.
//
//	fs := vfs.Default
//	f, err := fs.Create("dir/seg-1.vseg")
//	f.Write(b)
//	f.Sync() // fdatasync: the bytes survive a crash from here on
//	fs.SyncDir("dir") // the new name survives too
//
// Implementations are safe for concurrent use by multiple goroutines; a
// File is used by one goroutine at a time except for ReadAt, which is safe
// concurrently with Write.
package vfs
