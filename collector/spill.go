package collector

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/vfs"
)

// The spill file: where fail_open keeps records while the store cannot
// take them, until they are replayed, in order. Its layout (little-endian;
// do not change, spill files outlive processes):
//
//	offset  size  field
//	0       8     magic "VLMSPIL1"
//	8       …     frames, each:
//	              4  payload length n (1 ≤ n ≤ maxFrame)
//	              4  CRC-32C (Castagnoli) of the payload
//	              n  payload: one vellum.Record as JSON
//
// Frames are appended and fsync'd in batches. A crash can leave an
// incomplete last frame (a torn tail): opening cuts it off. A frame whose
// CRC does not match, or whose length is out of range, with bytes after it
// is corruption: opening fails, naming the offset, and nothing is replayed
// until an operator has looked at the file. Once every frame is replayed
// the file is cut back to its magic.
const (
	spillMagic  = "VLMSPIL1"
	frameHeader = 8
	maxFrame    = 4 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrSpillCorrupt reports a spill file that is damaged other than by a
// torn tail.
var ErrSpillCorrupt = errors.New("collector: corrupt spill file")

// errSpillFull reports that a batch does not fit in the spill's bounds.
var errSpillFull = errors.New("collector: spill full")

// appendFrame appends the frame of payload to b.
func appendFrame(b, payload []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(payload, castagnoli))
	return append(b, payload...)
}

// decodeFrames returns the payloads of the whole frames at the start of
// b (which starts at file offset base) and how many bytes they take. An
// incomplete frame at the end is not an error: the caller sees it as the
// bytes after n. A bad length or CRC is ErrSpillCorrupt naming the offset.
func decodeFrames(b []byte, base int64) (payloads [][]byte, n int, err error) {
	for {
		rest := b[n:]
		if len(rest) < frameHeader {
			return payloads, n, nil
		}
		size := binary.LittleEndian.Uint32(rest)
		if size == 0 || size > maxFrame {
			return payloads, n, fmt.Errorf("%w: frame at offset %d has length %d (want 1 to %d)", ErrSpillCorrupt, base+int64(n), size, maxFrame)
		}
		if len(rest) < frameHeader+int(size) {
			return payloads, n, nil
		}
		p := rest[frameHeader : frameHeader+int(size)]
		if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(rest[4:]) {
			return payloads, n, fmt.Errorf("%w: frame at offset %d fails its CRC", ErrSpillCorrupt, base+int64(n))
		}
		payloads = append(payloads, p)
		n += frameHeader + int(size)
	}
}

// spill is the bounded spill file. It is not safe for concurrent use: the
// collector's writer goroutine owns it.
type spill struct {
	fs         vfs.FS
	path       string
	f          vfs.File
	size       int64 // file length
	readOff    int64 // offset of the next frame to replay
	pending    int   // records after readOff
	maxBytes   int64
	maxRecords int
}

// openSpill opens (or creates) the spill file at path, cutting off a torn
// tail; a corrupt file is an error wrapping ErrSpillCorrupt.
func openSpill(fsys vfs.FS, path string, maxBytes int64, maxRecords int) (*spill, error) {
	s := &spill{fs: fsys, path: path, maxBytes: maxBytes, maxRecords: maxRecords}
	if err := fsys.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("collector: spill: %w", err)
	}
	f, err := fsys.OpenWrite(path)
	if errors.Is(err, fs.ErrNotExist) {
		if f, err = fsys.Create(path); err == nil {
			if _, err = f.Write([]byte(spillMagic)); err == nil {
				err = f.Sync()
			}
			if err == nil {
				err = fsys.SyncDir(filepath.Dir(path))
			}
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("collector: spill: create %s: %w", path, err)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("collector: spill: %w", err)
	}
	s.f = f
	if err := s.load(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// load reads the existing frames, counting them and cutting a torn tail.
func (s *spill) load() error {
	size, err := s.f.Size()
	if err != nil {
		return fmt.Errorf("collector: spill: %w", err)
	}
	b := make([]byte, size)
	if _, err := s.f.ReadAt(b, 0); err != nil && size > 0 {
		return fmt.Errorf("collector: spill: read %s: %w", s.path, err)
	}
	if len(b) < len(spillMagic) || string(b[:len(spillMagic)]) != spillMagic {
		return fmt.Errorf("%w: %s does not start with %q", ErrSpillCorrupt, s.path, spillMagic)
	}
	payloads, n, err := decodeFrames(b[len(spillMagic):], int64(len(spillMagic)))
	if err != nil {
		return fmt.Errorf("%w (%s)", err, s.path)
	}
	good := int64(len(spillMagic) + n)
	if good < size { // torn tail
		if err := s.f.Truncate(good); err != nil {
			return fmt.Errorf("collector: spill: cut torn tail: %w", err)
		}
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("collector: spill: cut torn tail: %w", err)
		}
	}
	s.size, s.readOff, s.pending = good, int64(len(spillMagic)), len(payloads)
	return nil
}

// add appends recs durably (fsync'd), or returns errSpillFull when they do
// not fit in the bounds, or the I/O error. Nothing is added on error.
func (s *spill) add(recs []vellum.Record) error {
	var b []byte
	for i := range recs {
		p, err := json.Marshal(&recs[i])
		if err != nil {
			return err
		}
		b = appendFrame(b, p)
	}
	if s.size+int64(len(b)) > s.maxBytes || s.pending+len(recs) > s.maxRecords {
		return errSpillFull
	}
	if _, err := s.f.Write(b); err != nil {
		s.f.Truncate(s.size)
		return fmt.Errorf("collector: spill: write: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		s.f.Truncate(s.size)
		return fmt.Errorf("collector: spill: fsync: %w", err)
	}
	s.size += int64(len(b))
	s.pending += len(recs)
	return nil
}

// next reads up to max records from the replay position and the offset
// after them.
func (s *spill) next(max int) ([]vellum.Record, int64, error) {
	var recs []vellum.Record
	off := s.readOff
	var hdr [frameHeader]byte
	for len(recs) < max && off < s.size {
		if _, err := s.f.ReadAt(hdr[:], off); err != nil {
			return nil, 0, fmt.Errorf("collector: spill: read at %d: %w", off, err)
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if n == 0 || n > maxFrame || off+frameHeader+int64(n) > s.size {
			return nil, 0, fmt.Errorf("%w: frame at offset %d has length %d", ErrSpillCorrupt, off, n)
		}
		frame := make([]byte, frameHeader+int(n))
		if _, err := s.f.ReadAt(frame, off); err != nil {
			return nil, 0, fmt.Errorf("collector: spill: read at %d: %w", off, err)
		}
		payloads, _, err := decodeFrames(frame, off)
		if err != nil || len(payloads) != 1 {
			return nil, 0, fmt.Errorf("%w: frame at offset %d", ErrSpillCorrupt, off)
		}
		var r vellum.Record
		if err := json.Unmarshal(payloads[0], &r); err != nil {
			return nil, 0, fmt.Errorf("%w: frame at offset %d: %v", ErrSpillCorrupt, off, err)
		}
		recs = append(recs, r)
		off += frameHeader + int64(n)
	}
	return recs, off, nil
}

// advance marks n records up to off as replayed; once none is left the
// file is cut back to its magic.
func (s *spill) advance(off int64, n int) error {
	s.readOff, s.pending = off, s.pending-n
	if s.pending > 0 {
		return nil
	}
	if err := s.f.Truncate(int64(len(spillMagic))); err != nil {
		return fmt.Errorf("collector: spill: truncate: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("collector: spill: truncate: %w", err)
	}
	s.size, s.readOff = int64(len(spillMagic)), int64(len(spillMagic))
	return nil
}

func (s *spill) close() error { return s.f.Close() }
