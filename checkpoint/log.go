package checkpoint

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"time"

	"github.com/vellumlog/vellum/vfs"
)

// Wire constants of the checkpoint log (segment/FORMAT.md, "Checkpoint
// log"). Do not change.
const (
	// LogName is the checkpoint log's file name in a data directory.
	LogName = "checkpoints"

	entryMagic  = "VCKP"
	entryHead   = 8 // magic, u32 note length
	entryTail   = 4 // u32 CRC32-C
	maxEntryLen = maxNote
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Entry is one signed checkpoint in the log and where it starts.
type Entry struct {
	Offset int64
	Note   []byte
}

// ReadResult is what reading a checkpoint log found.
type ReadResult struct {
	Entries []Entry
	// Size is where the valid entries end.
	Size int64
	// TornAt is the offset of an incomplete final entry, or -1.
	TornAt     int64
	TornReason string
}

// frame returns the log entry for a note.
func frame(msg []byte) []byte {
	b := make([]byte, 0, entryHead+len(msg)+entryTail)
	b = append(b, entryMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(msg)))
	b = append(b, msg...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// entryAt parses the entry at off, returning its length or a reason.
func entryAt(b []byte, off int) (int, string) {
	if len(b)-off < entryHead+entryTail {
		return 0, "truncated entry header"
	}
	if string(b[off:off+4]) != entryMagic {
		return 0, fmt.Sprintf("bad magic %q", b[off:off+4])
	}
	n := int(binary.LittleEndian.Uint32(b[off+4:]))
	if n > maxEntryLen {
		return 0, fmt.Sprintf("entry length %d exceeds %d", n, maxEntryLen)
	}
	end := off + entryHead + n
	if end+entryTail > len(b) {
		return 0, "entry runs past the end of the file"
	}
	if got, want := binary.LittleEndian.Uint32(b[end:]), crc32.Checksum(b[off:end], castagnoli); got != want {
		return 0, fmt.Sprintf("entry CRC %08x, computed %08x", got, want)
	}
	return entryHead + n + entryTail, ""
}

// ParseLog splits the bytes of a checkpoint log into entries. Bytes after
// the last valid entry that no later valid entry follows are a torn final
// entry (reported in TornAt); damage followed by a valid entry is a
// *CorruptError. Entries' notes are not parsed or verified here.
func ParseLog(path string, b []byte) (*ReadResult, error) {
	res := &ReadResult{TornAt: -1}
	off := 0
	for off < len(b) {
		n, reason := entryAt(b, off)
		if reason != "" {
			for q := off + 1; q+entryHead+entryTail <= len(b); q++ {
				if string(b[q:q+4]) == entryMagic {
					if _, r := entryAt(b, q); r == "" {
						return nil, &CorruptError{Path: path, Offset: int64(off), Reason: fmt.Sprintf("%s; a valid entry follows at offset %d", reason, q)}
					}
				}
			}
			res.TornAt, res.TornReason = int64(off), reason
			break
		}
		res.Entries = append(res.Entries, Entry{Offset: int64(off), Note: b[off+entryHead : off+n-entryTail]})
		off += n
	}
	if res.TornAt < 0 {
		res.Size = int64(len(b))
	} else {
		res.Size = res.TornAt
	}
	return res, nil
}

// ReadLog reads a checkpoint log without changing it. A missing file is an
// empty log.
func ReadLog(fs vfs.FS, path string) (*ReadResult, error) {
	if fs == nil {
		fs = vfs.Default
	}
	if _, err := fs.Stat(path); err != nil {
		return &ReadResult{TornAt: -1}, nil
	}
	b, err := vfs.ReadFile(fs, path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: read %s: %w", path, err)
	}
	return ParseLog(path, b)
}

// Log appends signed checkpoints to a checkpoint log file, one fsync per
// entry. Not safe for concurrent use.
type Log struct {
	fs     vfs.FS
	f      vfs.File
	path   string
	failed error
}

// OpenLog opens (creating if needed) the checkpoint log at path for
// appending and returns its entries. A torn final entry is cut off after
// the whole file is kept as <path>.broken-<unix-ns>; damage followed by
// valid entries fails with a *CorruptError and changes nothing.
func OpenLog(fs vfs.FS, path string) (*Log, *ReadResult, error) {
	if fs == nil {
		fs = vfs.Default
	}
	dir := filepath.Dir(path)
	if _, err := fs.Stat(path); err != nil {
		f, err := fs.Create(path)
		if err != nil {
			return nil, nil, fmt.Errorf("checkpoint: create %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("checkpoint: sync %s: %w", path, err)
		}
		f.Close()
		if err := fs.SyncDir(dir); err != nil {
			return nil, nil, fmt.Errorf("checkpoint: sync %s: %w", dir, err)
		}
	}
	b, err := vfs.ReadFile(fs, path)
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint: read %s: %w", path, err)
	}
	res, err := ParseLog(path, b)
	if err != nil {
		return nil, nil, err
	}
	if res.TornAt >= 0 {
		broken := fmt.Sprintf("%s.broken-%d", path, time.Now().UnixNano())
		if err := vfs.WriteFileAtomic(fs, dir, broken, b); err != nil {
			return nil, nil, fmt.Errorf("checkpoint: keep %s: %w", broken, err)
		}
	}
	f, err := fs.OpenWrite(path)
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint: open %s: %w", path, err)
	}
	if res.TornAt >= 0 {
		if err := f.Truncate(res.TornAt); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("checkpoint: cut torn entry of %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("checkpoint: sync %s: %w", path, err)
		}
	}
	// Entries alias b, which the caller now owns.
	return &Log{fs: fs, f: f, path: path}, res, nil
}

// Append writes one signed checkpoint and fsyncs. After a failed write or
// sync the Log accepts nothing more.
func (l *Log) Append(s Signed) error {
	if l.failed != nil {
		return l.failed
	}
	if len(s.Note) > maxEntryLen {
		return fmt.Errorf("%w: note of %d bytes", ErrMalformed, len(s.Note))
	}
	if _, err := l.f.Write(frame(s.Note)); err != nil {
		l.failed = fmt.Errorf("%w: write %s: %w", ErrFailed, l.path, err)
		return l.failed
	}
	if err := l.f.Sync(); err != nil {
		l.failed = fmt.Errorf("%w: fdatasync %s: %w", ErrFailed, l.path, err)
		return l.failed
	}
	return nil
}

// Path returns the log's file name.
func (l *Log) Path() string { return l.path }

// Close closes the file.
func (l *Log) Close() error { return l.f.Close() }
