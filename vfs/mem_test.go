package vfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestConformanceOS(t *testing.T)  { testFS(t, Default, t.TempDir()) }
func TestConformanceMem(t *testing.T) { testFS(t, NewMem(), "/data/vellum") }

// testFS checks the behaviours every FS shares (everything but crashes and
// faults) against fs, working below dir, which it creates.
func testFS(t *testing.T, fs FS, dir string) {
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		run  func(t *testing.T, fs FS, dir string)
	}{
		{"CreateWriteRead", func(t *testing.T, fs FS, dir string) {
			name := filepath.Join(dir, "f")
			f := mustCreate(t, fs, name, "hello", " world")
			defer f.Close()
			if f.Name() != name {
				t.Errorf("Name() = %q, want %q", f.Name(), name)
			}
			if n, err := f.Size(); n != 11 || err != nil {
				t.Errorf("Size() = %d, %v; want 11", n, err)
			}
			wantContent(t, fs, name, "hello world")
		}},
		{"ReadAtEOF", func(t *testing.T, fs FS, dir string) {
			f := mustCreate(t, fs, filepath.Join(dir, "f"), "abcdef")
			defer f.Close()
			for _, c := range []struct {
				off  int64
				size int
				want string
				err  error
			}{
				{0, 6, "abcdef", nil},
				{4, 4, "ef", io.EOF},
				{6, 1, "", io.EOF},
				{9, 1, "", io.EOF},
				{9, 0, "", nil},
			} {
				b := make([]byte, c.size)
				n, err := f.ReadAt(b, c.off)
				if string(b[:n]) != c.want || err != c.err {
					t.Errorf("ReadAt(%d bytes, %d) = %q, %v; want %q, %v", c.size, c.off, b[:n], err, c.want, c.err)
				}
			}
		}},
		{"CreateExisting", func(t *testing.T, fs FS, dir string) {
			name := filepath.Join(dir, "f")
			mustCreate(t, fs, name, "x").Close()
			if _, err := fs.Create(name); !errors.Is(err, os.ErrExist) {
				t.Errorf("second Create: %v, want ErrExist", err)
			}
			if _, err := fs.Create(dir); !errors.Is(err, os.ErrExist) {
				t.Errorf("Create over a directory: %v, want ErrExist", err)
			}
			wantContent(t, fs, name, "x")
		}},
		{"Missing", func(t *testing.T, fs FS, dir string) {
			name := filepath.Join(dir, "nope")
			for op, f := range map[string]func() error{
				"Open":      func() error { _, err := fs.Open(name); return err },
				"OpenWrite": func() error { _, err := fs.OpenWrite(name); return err },
				"Remove":    func() error { return fs.Remove(name) },
				"Rename":    func() error { return fs.Rename(name, name+"2") },
				"Stat":      func() error { _, err := fs.Stat(name); return err },
				"Chmod":     func() error { return fs.Chmod(name, 0o600) },
				"ReadDir":   func() error { _, err := fs.ReadDir(name); return err },
				"SyncDir":   func() error { return fs.SyncDir(name) },
				"Create":    func() error { _, err := fs.Create(filepath.Join(name, "f")); return err },
			} {
				if err := f(); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s: %v, want ErrNotExist", op, err)
				}
			}
		}},
		{"OpenWriteAppends", func(t *testing.T, fs FS, dir string) {
			name := filepath.Join(dir, "f")
			mustCreate(t, fs, name, "one").Close()
			f, err := fs.OpenWrite(name)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, "two")
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			wantContent(t, fs, name, "onetwo")
		}},
		{"OpenWriteAt", func(t *testing.T, fs FS, dir string) {
			name := filepath.Join(dir, "f")
			mustCreate(t, fs, name, "abcdef").Close()
			a, err := fs.OpenWrite(name)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.WriteAt([]byte("x"), 0); err == nil {
				t.Error("WriteAt on a file opened for appending succeeded")
			}
			a.Close()
			f, err := fs.OpenWriteAt(name)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if n, err := f.WriteAt([]byte("XY"), 2); n != 2 || err != nil {
				t.Fatalf("WriteAt inside = %d, %v", n, err)
			}
			wantContent(t, fs, name, "abXYef") // overwritten in place, same length
			if n, err := f.WriteAt([]byte("Z"), 8); n != 1 || err != nil {
				t.Fatalf("WriteAt past the end = %d, %v", n, err)
			}
			wantContent(t, fs, name, "abXYef\x00\x00Z") // the gap reads as zeros
			if sz, err := f.Size(); sz != 9 || err != nil {
				t.Errorf("Size = %d, %v; want 9", sz, err)
			}
			if _, err := f.WriteAt([]byte("x"), -1); err == nil {
				t.Error("WriteAt(-1) succeeded")
			}
		}},
		{"OpenReadOnly", func(t *testing.T, fs FS, dir string) {
			name := filepath.Join(dir, "f")
			mustCreate(t, fs, name, "data").Close()
			f, err := fs.Open(name)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write([]byte("x")); err == nil {
				t.Error("Write on a read-only file succeeded")
			}
			if err := f.Truncate(0); err == nil {
				t.Error("Truncate on a read-only file succeeded")
			}
			wantContent(t, fs, name, "data")
		}},
		{"Truncate", func(t *testing.T, fs FS, dir string) {
			name := filepath.Join(dir, "f")
			f := mustCreate(t, fs, name, "abcdef")
			defer f.Close()
			if err := f.Truncate(3); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, "XY") // appends at the new end
			wantContent(t, fs, name, "abcXY")
			if err := f.Truncate(7); err != nil {
				t.Fatal(err)
			}
			wantContent(t, fs, name, "abcXY\x00\x00")
			if err := f.Truncate(-1); err == nil {
				t.Error("Truncate(-1) succeeded")
			}
		}},
		{"StatChmod", func(t *testing.T, fs FS, dir string) {
			name := filepath.Join(dir, "f")
			mustCreate(t, fs, name, "abc").Close()
			if err := fs.Chmod(name, 0o444); err != nil {
				t.Fatal(err)
			}
			fi, err := fs.Stat(name)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Name() != "f" || fi.Size() != 3 || fi.Mode() != 0o444 || fi.IsDir() {
				t.Errorf("Stat = %q size %d mode %v dir %v; want f, 3, -r--r--r--, false", fi.Name(), fi.Size(), fi.Mode(), fi.IsDir())
			}
			if fi, err := fs.Stat(dir); err != nil || !fi.IsDir() {
				t.Errorf("Stat(dir) = %v, %v; want a directory", fi, err)
			}
			if _, ok := fs.(osFS); ok && os.Geteuid() == 0 {
				t.Skip("root ignores permission bits")
			}
			if _, err := fs.OpenWrite(name); !errors.Is(err, os.ErrPermission) {
				t.Errorf("OpenWrite of a 0444 file: %v, want ErrPermission", err)
			}
		}},
		{"ReadDirMkdirAll", func(t *testing.T, fs FS, dir string) {
			for _, n := range []string{"c", "a", "b"} {
				mustCreate(t, fs, filepath.Join(dir, n), n).Close()
			}
			if err := fs.MkdirAll(filepath.Join(dir, "sub", "deep"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := fs.MkdirAll(filepath.Join(dir, "a", "x"), 0o755); err == nil {
				t.Error("MkdirAll through a file succeeded")
			}
			wantDir(t, fs, dir, "a", "b", "c", "sub")
			wantDir(t, fs, filepath.Join(dir, "sub"), "deep")
			wantDir(t, fs, filepath.Join(dir, "sub", "deep"))
			if err := fs.SyncDir(dir); err != nil {
				t.Errorf("SyncDir: %v", err)
			}
		}},
		{"RenameRemove", func(t *testing.T, fs FS, dir string) {
			a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
			mustCreate(t, fs, a, "new").Close()
			mustCreate(t, fs, b, "old").Close()
			if err := fs.Rename(a, b); err != nil {
				t.Fatal(err)
			}
			wantDir(t, fs, dir, "b")
			wantContent(t, fs, b, "new")
			if err := fs.Remove(b); err != nil {
				t.Fatal(err)
			}
			wantDir(t, fs, dir)
		}},
		{"RemoveOpenFile", func(t *testing.T, fs FS, dir string) {
			name := filepath.Join(dir, "f")
			f := mustCreate(t, fs, name, "abc")
			defer f.Close()
			if err := fs.Remove(name); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, "d")
			b := make([]byte, 4)
			if n, err := f.ReadAt(b, 0); n != 4 || err != nil || string(b) != "abcd" {
				t.Errorf("ReadAt of an unlinked file = %q, %v; want abcd", b[:n], err)
			}
		}},
		{"Closed", func(t *testing.T, fs FS, dir string) {
			f := mustCreate(t, fs, filepath.Join(dir, "f"), "abc")
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			for op, call := range map[string]func() error{
				"Write":    func() error { _, err := f.Write([]byte("x")); return err },
				"ReadAt":   func() error { _, err := f.ReadAt(make([]byte, 1), 0); return err },
				"Size":     func() error { _, err := f.Size(); return err },
				"Truncate": func() error { return f.Truncate(0) },
				"Close":    f.Close,
			} {
				if err := call(); !errors.Is(err, os.ErrClosed) {
					t.Errorf("%s after Close: %v, want ErrClosed", op, err)
				}
			}
			if err := f.Sync(); !errors.Is(err, os.ErrClosed) {
				t.Errorf("Sync after Close: %v, want ErrClosed", err)
			}
		}},
		{"Lock", func(t *testing.T, fs FS, dir string) {
			name := filepath.Join(dir, "LOCK")
			l, err := fs.Lock(name)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fs.Lock(name); !errors.Is(err, ErrLocked) {
				t.Errorf("second Lock: %v, want ErrLocked", err)
			}
			wantDir(t, fs, dir, "LOCK")
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l, err = fs.Lock(name)
			if err != nil {
				t.Fatalf("Lock after release: %v", err)
			}
			l.Close()
		}},
		{"WriteFileAtomic", func(t *testing.T, fs FS, dir string) {
			name := filepath.Join(dir, "meta")
			for _, s := range []string{"v1", "version two"} {
				if err := WriteFileAtomic(fs, dir, name, []byte(s)); err != nil {
					t.Fatal(err)
				}
				wantContent(t, fs, name, s)
			}
			wantDir(t, fs, dir, "meta")
		}},
		{"ConcurrentReadAtWrite", func(t *testing.T, fs FS, dir string) {
			f := mustCreate(t, fs, filepath.Join(dir, "f"))
			defer f.Close()
			chunk := bytes.Repeat([]byte{'z'}, 64)
			var wg sync.WaitGroup
			wg.Go(func() {
				for range 200 {
					if _, err := f.Write(chunk); err != nil {
						t.Error(err)
						return
					}
				}
			})
			b := make([]byte, 64)
			for range 200 {
				if n, err := f.ReadAt(b, 0); err != nil && err != io.EOF || !bytes.Equal(b[:n], chunk[:n]) {
					t.Fatalf("ReadAt = %q, %v", b[:n], err)
				}
			}
			wg.Wait()
			if n, _ := f.Size(); n != 200*64 {
				t.Errorf("Size = %d, want %d", n, 200*64)
			}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := filepath.Join(dir, fmt.Sprintf("%02d", i))
			if err := fs.MkdirAll(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			tt.run(t, fs, sub)
		})
	}
}

func mustCreate(t *testing.T, fs FS, name string, chunks ...string) File {
	t.Helper()
	f, err := fs.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chunks {
		mustWrite(t, f, c)
	}
	return f
}

func mustWrite(t *testing.T, f File, s string) {
	t.Helper()
	if n, err := f.Write([]byte(s)); n != len(s) || err != nil {
		t.Fatalf("Write(%q) = %d, %v", s, n, err)
	}
}

func wantContent(t *testing.T, fs FS, name, want string) {
	t.Helper()
	b, err := ReadFile(fs, name)
	if err != nil || string(b) != want {
		t.Errorf("ReadFile(%s) = %q, %v; want %q", name, b, err, want)
	}
}

func wantDir(t *testing.T, fs FS, dir string, want ...string) {
	t.Helper()
	names, err := fs.ReadDir(dir)
	if err != nil || !slices.Equal(names, want) {
		t.Errorf("ReadDir(%s) = %q, %v; want %q", dir, names, err, want)
	}
}

// content returns name's content in fs, or "<missing>".
func content(t *testing.T, fs FS, name string) string {
	t.Helper()
	b, err := ReadFile(fs, name)
	if errors.Is(err, os.ErrNotExist) {
		return "<missing>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCrashNilRNG(t *testing.T) {
	// Each case starts with d/old holding "old", synced and dir-synced, and
	// crashes keeping only durable state.
	tests := []struct {
		name string
		do   func(t *testing.T, m *Mem)
		want map[string]string // name in d -> content after Crash(nil)
	}{
		{"SyncedFileSyncedDir", func(t *testing.T, m *Mem) {
			f := mustCreate(t, m, "d/new", "data")
			f.Sync()
			m.SyncDir("d")
		}, map[string]string{"old": "old", "new": "data"}},
		{"SyncedFileUnsyncedDir", func(t *testing.T, m *Mem) {
			mustCreate(t, m, "d/new", "data").Sync()
		}, map[string]string{"old": "old", "new": "<missing>"}},
		{"UnsyncedFileSyncedDir", func(t *testing.T, m *Mem) {
			mustCreate(t, m, "d/new", "data")
			m.SyncDir("d")
		}, map[string]string{"old": "old", "new": ""}},
		{"RenameUnsynced", func(t *testing.T, m *Mem) {
			mustCreate(t, m, "d/tmp", "new").Sync()
			m.Rename("d/tmp", "d/old")
		}, map[string]string{"old": "old", "tmp": "<missing>"}},
		{"RenameSynced", func(t *testing.T, m *Mem) {
			mustCreate(t, m, "d/tmp", "new").Sync()
			m.Rename("d/tmp", "d/old")
			m.SyncDir("d")
		}, map[string]string{"old": "new", "tmp": "<missing>"}},
		{"RenameOtherDirSynced", func(t *testing.T, m *Mem) {
			m.Rename("d/old", "e/moved")
			m.SyncDir("e") // d not synced: both names survive
		}, map[string]string{"old": "old", "../e/moved": "old"}},
		{"RemoveUnsynced", func(t *testing.T, m *Mem) {
			m.Remove("d/old")
		}, map[string]string{"old": "old"}},
		{"RemoveSynced", func(t *testing.T, m *Mem) {
			m.Remove("d/old")
			m.SyncDir("d")
		}, map[string]string{"old": "<missing>"}},
		{"TruncateUnsynced", func(t *testing.T, m *Mem) {
			f, _ := m.OpenWrite("d/old")
			f.Truncate(1)
			mustWrite(t, f, "XYZ") // must not overwrite the synced bytes
		}, map[string]string{"old": "old"}},
		{"TruncateSynced", func(t *testing.T, m *Mem) {
			f, _ := m.OpenWrite("d/old")
			f.Truncate(1)
			mustWrite(t, f, "XYZ")
			f.Sync()
			mustWrite(t, f, "unsynced")
		}, map[string]string{"old": "oXYZ"}},
		{"WriteFileAtomic", func(t *testing.T, m *Mem) {
			if err := WriteFileAtomic(m, "d", "d/old", []byte("atomic")); err != nil {
				t.Fatal(err)
			}
		}, map[string]string{"old": "atomic", "old.tmp": "<missing>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMem()
			m.MkdirAll("d", 0o755)
			m.MkdirAll("e", 0o755)
			mustCreate(t, m, "d/old", "old").Sync()
			m.SyncDir("d")
			tt.do(t, m)
			c := m.Crash(nil)
			for name, want := range tt.want {
				if got := content(t, c, filepath.Join("d", name)); got != want {
					t.Errorf("after crash d/%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

func TestCrashUnsyncedData(t *testing.T) {
	const synced = 1000 // not block-aligned on purpose
	data := make([]byte, 5000)
	for i := range data {
		data[i] = byte(i%251) + 1 // no zero bytes, so dropped blocks show
	}
	setup := func(t *testing.T) *Mem {
		m := NewMem()
		f := mustCreate(t, m, "f", string(data[:synced]))
		f.Sync()
		m.SyncDir(".")
		for i := synced; i < len(data); i += 700 {
			mustWrite(t, f, string(data[i:min(i+700, len(data))]))
		}
		return m
	}
	tests := []struct {
		name  string
		crash func(m *Mem, rng *rand.Rand) *Mem
		// valid reports whether got is a possible crash result.
		valid func(got []byte) bool
		// seen are lengths 200 seeds must produce, besides synced and full.
		seen []int
		// holes tells whether some seed must leave a zeroed block.
		holes bool
	}{
		{"Blocks", (*Mem).Crash, func(got []byte) bool {
			if len(got) == synced {
				return bytes.Equal(got, data[:synced])
			}
			if len(got) < synced || len(got) != len(data) && len(got)%crashBlock != 0 {
				return false
			}
			for off := synced; off < len(got); {
				end := min((off/crashBlock+1)*crashBlock, len(got))
				blk := got[off:end]
				if !bytes.Equal(blk, data[off:end]) && !bytes.Equal(blk, make([]byte, end-off)) {
					return false
				}
				off = end
			}
			return bytes.Equal(got[:synced], data[:synced]) && got[len(got)-1] != 0
		}, []int{1024, 4608}, true},
		{"Prefix", (*Mem).CrashKeepPrefix, func(got []byte) bool {
			return len(got) >= synced && bytes.Equal(got, data[:len(got)])
		}, []int{synced + 700, synced + 2800}, false}, // write boundaries
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := content(t, tt.crash(setup(t), nil), "f"); got != string(data[:synced]) {
				t.Errorf("nil rng kept %d bytes, want exactly the %d synced", len(got), synced)
			}
			lengths, holes := map[int]bool{}, false
			for seed := range uint64(200) {
				m := setup(t)
				got := content(t, tt.crash(m, rand.New(rand.NewPCG(seed, 0))), "f")
				if !tt.valid([]byte(got)) {
					t.Fatalf("seed %d: impossible crash result of %d bytes", seed, len(got))
				}
				if again := content(t, tt.crash(m, rand.New(rand.NewPCG(seed, 0))), "f"); again != got {
					t.Fatalf("seed %d: Crash is not deterministic", seed)
				}
				lengths[len(got)] = true
				holes = holes || strings.IndexByte(got, 0) >= 0
			}
			if holes != tt.holes {
				t.Errorf("some result had zeroed blocks: %v, want %v", holes, tt.holes)
			}
			for _, n := range append(tt.seen, synced, len(data)) {
				if !lengths[n] {
					t.Errorf("200 seeds never kept %d bytes; got lengths %v", n, slices.Sorted(maps.Keys(lengths)))
				}
			}
		})
	}
}

func TestCrashCloneIsIndependent(t *testing.T) {
	m := NewMem()
	f := mustCreate(t, m, "f", "abc")
	f.Sync()
	m.SyncDir(".")
	c := m.Crash(nil)
	mustWrite(t, f, "def")
	f.Sync()
	g, err := c.OpenWrite("f")
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, g, "XYZ")
	wantContent(t, m, "f", "abcdef")
	wantContent(t, c, "f", "abcXYZ")
	if got := content(t, c.Crash(nil), "f"); got != "abc" {
		t.Errorf("second crash = %q, want abc", got)
	}
}

// TestCrashAfterTruncate checks crashes of a synced file that was then cut
// back and appended to without a sync: the result is either the synced
// content (the truncate undone) or the kept prefix followed by unsynced
// data, never a mix of the old and new tails.
func TestCrashAfterTruncate(t *testing.T) {
	const old = "abcdef"
	tail := strings.Repeat("x", 600) + strings.Repeat("y", 600)
	for _, tt := range []struct {
		name  string
		crash func(m *Mem, rng *rand.Rand) *Mem
		hole  bool // whether the block right after the cut may be dropped
	}{{"Blocks", (*Mem).Crash, true}, {"Prefix", (*Mem).CrashKeepPrefix, false}} {
		t.Run(tt.name, func(t *testing.T) {
			seen := map[string]bool{}
			for seed := range uint64(100) {
				m := NewMem()
				f := mustCreate(t, m, "f", old)
				f.Sync()
				m.SyncDir(".")
				f.Truncate(2)
				mustWrite(t, f, tail[:600])
				mustWrite(t, f, tail[600:])
				got := content(t, tt.crash(m, rand.New(rand.NewPCG(seed, 1))), "f")
				switch {
				case got == old:
					seen["old"] = true
				case len(got) < 3 || got[:2] != "ab":
					t.Fatalf("seed %d: crash left %.10q... (%d bytes)", seed, got, len(got))
				default:
					for i := 2; i < len(got); i++ {
						if got[i] != 0 && got[i] != tail[i-2] {
							t.Fatalf("seed %d: byte %d is %q", seed, i, got[i])
						}
					}
					seen["new"] = true
					seen["hole"] = seen["hole"] || got[2] == 0
				}
			}
			if !seen["old"] || !seen["new"] || seen["hole"] != tt.hole {
				t.Errorf("100 seeds gave %v; want old, new, and hole=%v", seen, tt.hole)
			}
		})
	}
}

// TestCrashOverwrite checks crashes of a synced, zero-filled (preallocated)
// file then written in place without a sync: the file keeps its synced
// length, every 512-byte block holds either its new bytes or its zeros,
// and a torn prefix keeps new bytes only from the start of the writes.
func TestCrashOverwrite(t *testing.T) {
	const size = 4096
	for _, tt := range []struct {
		name   string
		crash  func(m *Mem, rng *rand.Rand) *Mem
		prefix bool
	}{{"Blocks", (*Mem).Crash, false}, {"Prefix", (*Mem).CrashKeepPrefix, true}} {
		t.Run(tt.name, func(t *testing.T) {
			seen := map[string]bool{}
			for seed := range uint64(100) {
				m := NewMem()
				c := mustCreate(t, m, "f", string(make([]byte, size)))
				c.Sync()
				c.Close()
				m.SyncDir(".")
				f, err := m.OpenWriteAt("f")
				if err != nil {
					t.Fatal(err)
				}
				f.WriteAt([]byte("head"), 0)
				f.Sync()
				newData := bytes.Repeat([]byte("n"), 1500)
				f.WriteAt(newData[:700], 100)
				f.WriteAt(newData[700:], 800)
				got := []byte(content(t, tt.crash(m, rand.New(rand.NewPCG(seed, 1))), "f"))
				if len(got) != size || string(got[:4]) != "head" {
					t.Fatalf("seed %d: crash left %d bytes starting %q; want %d starting head", seed, len(got), got[:min(4, len(got))], size)
				}
				kept := 0
				for i := 100; i < 1600; i++ {
					switch got[i] {
					case 'n':
						kept++
					case 0:
						if tt.prefix && i+1 < 1600 && got[i+1] == 'n' {
							t.Fatalf("seed %d: a torn prefix has a hole at %d", seed, i)
						}
					default:
						t.Fatalf("seed %d: byte %d is %q", seed, i, got[i])
					}
				}
				if !bytes.Equal(got[1600:], make([]byte, size-1600)) || got[4] != 0 {
					t.Fatalf("seed %d: bytes outside the writes changed", seed)
				}
				switch kept {
				case 0:
					seen["none"] = true
				case 1500:
					seen["all"] = true
				default:
					seen["some"] = true
				}
			}
			if !seen["none"] || !seen["some"] {
				t.Errorf("100 seeds gave %v; want none and some kept", seen)
			}
		})
	}
}
