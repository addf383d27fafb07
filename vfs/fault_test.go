package vfs

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
)

// workload writes and syncs two files in a new directory, checking every
// error, as a store would. It stops at the first error and returns it.
func workload(fs FS) error {
	if err := fs.MkdirAll("w", 0o755); err != nil {
		return err
	}
	var files []File
	for _, name := range []string{"w/a", "w/b"} {
		f, err := fs.Create(name)
		if err != nil {
			return err
		}
		files = append(files, f)
	}
	if err := fs.SyncDir("w"); err != nil {
		return err
	}
	for i := range 3 {
		for _, f := range files {
			if _, err := fmt.Fprintf(f, "%s%d;", f.Name(), i); err != nil {
				return err
			}
			if err := f.Sync(); err != nil {
				return err
			}
		}
	}
	return fs.Rename("w/a", "w/c")
}

func TestFailNth(t *testing.T) {
	clean := NewMem()
	if err := workload(clean); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		count func(*Mem) int
		arm   func(m *Mem, n int)
		calls func(*Mem) int
	}{
		{"Write", (*Mem).Writes, (*Mem).FailWrite, (*Mem).Writes},
		{"Sync", (*Mem).Syncs, (*Mem).FailSync, (*Mem).Syncs},
		{"Create", (*Mem).Creates, (*Mem).FailCreate, (*Mem).Creates},
	}
	for _, tt := range tests {
		total := tt.count(clean)
		if total < 3 {
			t.Fatalf("%s: workload made only %d calls", tt.name, total)
		}
		for n := 1; n <= total+1; n++ {
			t.Run(fmt.Sprintf("%s/n=%d", tt.name, n), func(t *testing.T) {
				m := NewMem()
				m.MkdirAll("setup", 0o755) // calls before arming do not count
				mustCreate(t, m, "setup/x", "x").Sync()
				tt.arm(m, n)
				before := tt.calls(m)
				err := workload(m)
				switch {
				case n > total && err != nil:
					t.Fatalf("fault past the last call fired: %v", err)
				case n > total:
					return
				case !errors.Is(err, ErrInjected):
					t.Fatalf("workload = %v, want ErrInjected", err)
				case tt.calls(m)-before != n:
					t.Errorf("failed at call %d, want %d", tt.calls(m)-before, n)
				}
				// One-shot: rerunning the rest of the workload succeeds.
				for _, name := range []string{"w/a", "w/b", "w/c"} {
					m.Remove(name)
				}
				if err := workload(m); err != nil {
					t.Errorf("second run: %v", err)
				}
			})
		}
	}
}

func TestFailedSyncIsNotDurable(t *testing.T) {
	m := NewMem()
	f := mustCreate(t, m, "f", "kept")
	f.Sync()
	m.SyncDir(".")
	mustWrite(t, f, "lost")
	m.FailSync(1)
	if err := f.Sync(); !errors.Is(err, ErrInjected) {
		t.Fatalf("Sync = %v, want ErrInjected", err)
	}
	mustCreate(t, m, "g")
	m.FailSync(1)
	if err := m.SyncDir("."); !errors.Is(err, ErrInjected) {
		t.Fatalf("SyncDir = %v, want ErrInjected", err)
	}
	c := m.Crash(nil)
	wantContent(t, c, "f", "kept")
	wantDir(t, c, ".", "f")
}

func TestFailShortWrite(t *testing.T) {
	tests := []struct {
		name       string
		keep       int
		wantN      int
		wantSuffix string
	}{
		{"Nothing", 0, 0, ""},
		{"Prefix", 3, 3, "abc"},
		{"MoreThanBuffer", 99, 6, "abcdef"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMem()
			f := mustCreate(t, m, "f", "1")
			m.FailShortWrite(1, tt.keep)
			n, err := f.Write([]byte("abcdef"))
			if n != tt.wantN || !errors.Is(err, ErrInjected) {
				t.Errorf("Write = %d, %v; want %d, ErrInjected", n, err, tt.wantN)
			}
			wantContent(t, m, "f", "1"+tt.wantSuffix)
			mustWrite(t, f, "2")
		})
	}
}

func TestCapacity(t *testing.T) {
	m := NewMem()
	m.SetCapacity(10)
	f := mustCreate(t, m, "a", "1234")
	g := mustCreate(t, m, "b", "5678")
	n, err := g.Write([]byte("9abc"))
	if n != 2 || !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, ErrInjected) {
		t.Fatalf("Write past capacity = %d, %v; want 2, ENOSPC and ErrInjected", n, err)
	}
	if !strings.Contains(err.Error(), "no space left") {
		t.Errorf("error %q does not say the disk is full", err)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Write to a full disk = %v, want ENOSPC", err)
	}
	wantContent(t, m, "b", "56789a")
	if err := m.Remove("b"); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, "xyz") // Remove freed space
	if err := f.Truncate(1); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, "23456789") // so did Truncate
	m.SetCapacity(-1)
	mustWrite(t, f, strings.Repeat("z", 1000))
}

func TestMemLockIsPerMem(t *testing.T) {
	a, b := NewMem(), NewMem()
	la, err := a.Lock("LOCK")
	if err != nil {
		t.Fatal(err)
	}
	lb, err := b.Lock("LOCK")
	if err != nil {
		t.Fatalf("Lock in another Mem: %v", err)
	}
	if _, err := a.Lock("./LOCK"); !errors.Is(err, ErrLocked) {
		t.Errorf("Lock of the same cleaned name: %v, want ErrLocked", err)
	}
	if _, err := a.Crash(nil).Lock("LOCK"); err != nil {
		t.Errorf("Lock after Crash: %v; a crash releases locks", err)
	}
	la.Close()
	lb.Close()
	if err := la.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
}
