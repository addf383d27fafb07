package witness

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"time"

	"github.com/vellumlog/vellum/vfs"
)

// Wire constants of the alarm log (docs/witness.md, "Alarm log"). Do not
// change.
const (
	// AlarmsName is the alarm log's file name in the witness's directory.
	AlarmsName = "alarms"

	alarmMagic = "VALM"
	alarmHead  = 8 // magic, u32 payload length
	alarmTail  = 4 // u32 CRC32-C
	// maxAlarm bounds one entry's payload: two notes of at most 16 KiB,
	// a request body of at most 32 KiB, and the text around them.
	maxAlarm = 128 << 10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Alarm is one refusal the witness recorded because it may be evidence of
// log misbehaviour: a rollback, a fork, a failed consistency proof, or a
// checkpoint for a watched log without a valid signature by its key.
// Alarms are never removed; each names the SHA-256 of the one before, and
// the witness's state records how many there are and the last one's hash,
// so cutting the log back is noticed at the next start.
type Alarm struct {
	// Seq numbers alarms from 1.
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Origin string    `json:"origin"`
	// Status is the HTTP status the request was answered with.
	Status int    `json:"status"`
	Detail string `json:"detail"`
	// Latest is the witness's cosigned checkpoint for the origin when the
	// request came ("" when it had none).
	Latest string `json:"latest,omitempty"`
	// Submitted is the request body: the old size, the proof and the
	// signed checkpoint. With Latest, a signed checkpoint that contradicts
	// a cosigned one is proof of the log's misbehaviour.
	Submitted string `json:"submitted,omitempty"`
	// Prev is the hex SHA-256 of the previous entry's payload, "" for the
	// first.
	Prev string `json:"prev"`
}

// alarmLog is the append-only alarm file. Not safe for concurrent use
// (the Witness's mutex guards it).
type alarmLog struct {
	fs     vfs.FS
	path   string
	f      vfs.File
	list   []Alarm
	hashes []string // hex SHA-256 of each alarm's payload
	head   string   // the last of hashes, "" when there is none
	failed error
}

// frameAlarm returns the log entry for a payload.
func frameAlarm(payload []byte) []byte {
	b := make([]byte, 0, alarmHead+len(payload)+alarmTail)
	b = append(b, alarmMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	b = append(b, payload...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// alarmAt parses the entry at off, returning its length or a reason.
func alarmAt(b []byte, off int) (int, string) {
	if len(b)-off < alarmHead+alarmTail {
		return 0, "truncated entry header"
	}
	if string(b[off:off+4]) != alarmMagic {
		return 0, fmt.Sprintf("bad magic %q", b[off:off+4])
	}
	n := int(binary.LittleEndian.Uint32(b[off+4:]))
	if n > maxAlarm {
		return 0, fmt.Sprintf("entry length %d exceeds %d", n, maxAlarm)
	}
	end := off + alarmHead + n
	if end+alarmTail > len(b) {
		return 0, "entry runs past the end of the file"
	}
	if got, want := binary.LittleEndian.Uint32(b[end:]), crc32.Checksum(b[off:end], castagnoli); got != want {
		return 0, fmt.Sprintf("entry CRC %08x, computed %08x", got, want)
	}
	return alarmHead + n + alarmTail, ""
}

// parseAlarms splits an alarm log into alarms and checks their chain. It
// returns where a torn final entry starts (-1 for none). Damage followed
// by a valid entry, a payload that is not an alarm, or a broken chain is a
// *CorruptError.
func parseAlarms(path string, b []byte) (list []Alarm, hashes []string, tornAt int64, err error) {
	tornAt = -1
	off := 0
	for off < len(b) {
		n, reason := alarmAt(b, off)
		if reason != "" {
			for q := off + 1; q+alarmHead+alarmTail <= len(b); q++ {
				if string(b[q:q+4]) == alarmMagic {
					if _, r := alarmAt(b, q); r == "" {
						return nil, nil, 0, &CorruptError{Path: path, Offset: int64(off), Reason: fmt.Sprintf("%s; a valid entry follows at offset %d", reason, q)}
					}
				}
			}
			tornAt = int64(off)
			break
		}
		payload := b[off+alarmHead : off+n-alarmTail]
		var a Alarm
		if err := json.Unmarshal(payload, &a); err != nil {
			return nil, nil, 0, &CorruptError{Path: path, Offset: int64(off), Reason: "entry is not an alarm: " + err.Error()}
		}
		head := ""
		if len(hashes) > 0 {
			head = hashes[len(hashes)-1]
		}
		if a.Seq != uint64(len(list))+1 || a.Prev != head {
			return nil, nil, 0, &CorruptError{Path: path, Offset: int64(off),
				Reason: fmt.Sprintf("alarm %d (previous %q) does not follow alarm %d (hash %q): an alarm was removed or altered", a.Seq, a.Prev, len(list), head)}
		}
		sum := sha256.Sum256(payload)
		hashes = append(hashes, hex.EncodeToString(sum[:]))
		list = append(list, a)
		off += n
	}
	return list, hashes, tornAt, nil
}

// openAlarms opens (creating if needed) the alarm log in dir. A torn final
// entry is cut off after the whole file is kept as alarms.broken-<unix-ns>.
func openAlarms(fs vfs.FS, dir string) (*alarmLog, error) {
	path := filepath.Join(dir, AlarmsName)
	if _, err := fs.Stat(path); err != nil {
		f, err := fs.Create(path)
		if err != nil {
			return nil, fmt.Errorf("witness: create %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("witness: sync %s: %w", path, err)
		}
		f.Close()
		if err := fs.SyncDir(dir); err != nil {
			return nil, fmt.Errorf("witness: sync %s: %w", dir, err)
		}
	}
	b, err := vfs.ReadFile(fs, path)
	if err != nil {
		return nil, fmt.Errorf("witness: read %s: %w", path, err)
	}
	list, hashes, tornAt, err := parseAlarms(path, b)
	if err != nil {
		return nil, err
	}
	if tornAt >= 0 {
		broken := fmt.Sprintf("%s.broken-%d", path, time.Now().UnixNano())
		if err := vfs.WriteFileAtomic(fs, dir, broken, b); err != nil {
			return nil, fmt.Errorf("witness: keep %s: %w", broken, err)
		}
	}
	f, err := fs.OpenWrite(path)
	if err != nil {
		return nil, fmt.Errorf("witness: open %s: %w", path, err)
	}
	if tornAt >= 0 {
		if err := f.Truncate(tornAt); err != nil {
			f.Close()
			return nil, fmt.Errorf("witness: cut torn entry of %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("witness: sync %s: %w", path, err)
		}
	}
	l := &alarmLog{fs: fs, path: path, f: f, list: list, hashes: hashes}
	if len(hashes) > 0 {
		l.head = hashes[len(hashes)-1]
	}
	return l, nil
}

// append numbers a, chains it to the last alarm, writes it and fsyncs.
// After a failed write or sync the log accepts nothing more.
func (l *alarmLog) append(a Alarm) (Alarm, error) {
	if l.failed != nil {
		return a, l.failed
	}
	a.Seq, a.Prev = uint64(len(l.list))+1, l.head
	payload, err := json.Marshal(a)
	if err != nil {
		return a, fmt.Errorf("witness: encode alarm: %w", err)
	}
	if len(payload) > maxAlarm {
		a.Submitted, a.Latest = "", ""
		a.Detail += " (request too large to keep)"
		if payload, err = json.Marshal(a); err != nil {
			return a, fmt.Errorf("witness: encode alarm: %w", err)
		}
	}
	if _, err := l.f.Write(frameAlarm(payload)); err != nil {
		l.failed = fmt.Errorf("witness: write %s: %w", l.path, err)
		return a, l.failed
	}
	if err := l.f.Sync(); err != nil {
		l.failed = fmt.Errorf("witness: fdatasync %s: %w", l.path, err)
		return a, l.failed
	}
	sum := sha256.Sum256(payload)
	l.head = hex.EncodeToString(sum[:])
	l.hashes = append(l.hashes, l.head)
	l.list = append(l.list, a)
	return a, nil
}

func (l *alarmLog) close() error { return l.f.Close() }
