package verify

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/merkle"
	"github.com/vellumlog/vellum/vfs"
)

// Options configure Dir. The zero value checks framing, links and Merkle
// roots only.
type Options struct {
	// FS is the file system; vfs.Default when nil.
	FS vfs.FS
	// Keys, when set, checks every record's MAC: proof of integrity to
	// key holders.
	Keys *chain.Keyring
	// Verifier is the checkpoint signing public key; when set, every
	// checkpoint's signature is checked.
	Verifier note.Verifier
	// Trusted is a signed checkpoint the caller holds from earlier (say, one
	// handed to an auditor); the data must still contain what it
	// describes. Requires Verifier.
	Trusted []byte
	// Origin is the expected checkpoint origin; "vellum/<store id>" by
	// default.
	Origin string
	// Workers is how many segments are checked at once; GOMAXPROCS by
	// default.
	Workers int
	// Progress, when set, is called about ten times a second and once at
	// the end with the segment bytes checked so far and the total.
	Progress func(done, total int64)
	// Witnesses are witness cosignature keys (cosign.Verifier). With them
	// Dir requires a checkpoint cosigned by Quorum of them, from the data
	// directory or Cosigned, and checks the data against every cosigned
	// checkpoint it finds (verify/witness.go). Requires Verifier.
	Witnesses []note.Verifier
	// Quorum is how many of Witnesses must cosign; all of them when zero.
	Quorum int
	// Cosigned are further cosigned checkpoints: ones fetched from the
	// witnesses themselves, or kept by the auditor, which the operator
	// cannot roll back with the data.
	Cosigned []CosignedNote

	// hashBatch is how many records a hashing batch holds (hashpool.go);
	// hashBatchSize when zero. Tests set it, small so that batches end
	// inside blocks and segments, to put every segment's records on the
	// pool when Workers > 1.
	hashBatch int
}

// Dir verifies the Vellum data directory dir without changing it. It
// returns an error only when dir cannot be read or the options are
// unusable; everything that does not verify is a Problem in the Report.
func Dir(dir string, opts *Options) (*Report, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if len(o.Trusted) > 0 && o.Verifier == nil {
		return nil, errors.New("verify: a trusted checkpoint needs the public key to check it")
	}
	if len(o.Witnesses) > 0 && o.Verifier == nil {
		return nil, errors.New("verify: witness cosignatures need the store's public key to check the checkpoints they cosign")
	}
	if o.Quorum < 0 || o.Quorum > len(o.Witnesses) {
		return nil, fmt.Errorf("verify: quorum %d is not between 1 and the %d witnesses given", o.Quorum, len(o.Witnesses))
	}
	v := &dirVerifier{o: o, dir: dir, rep: &Report{Dir: dir}}
	if err := v.run(); err != nil {
		return nil, err
	}
	return v.rep, nil
}

type dirVerifier struct {
	o       Options
	dir     string
	rep     *Report
	storeID [16]byte
	seq     uint64 // discovery counter for problem order

	cps     []cpEntry
	trusted *checkpoint.Signed
	sizes   []uint64 // checkpoint sizes whose roots are computed, sorted
	roots   map[uint64]merkle.Hash

	treeOK   bool   // the log-wide tree of all the data is known
	treeFrom uint64 // otherwise the first seq it lacks,
	treeWhy  string // and why
	dataSize uint64 // records the data holds (last seq)
	// endWhy is set when the data's end is unknown: the last segment ends
	// in unreadable bytes, so records after dataSize may exist.
	endWhy string

	cpLog     string   // "" when the checkpoint log was read; else why not
	cpDamaged []string // damaged entries of the checkpoint log
	cpChecked []cpOutcome
	beyond    uint64 // the largest checkpoint size beyond the data's end
	cov       coverageState

	cosigned []cosignedEntry // cosigned checkpoints (witness.go)

	purged *layout.Purged // the retention manifest (purged.go), nil when nothing was purged
	prefix *merkle.Range  // the compact range of the purged records
}

// segPath and segmentName name segment files in the data directory.
func (v *dirVerifier) segPath(n uint64) string { return layout.SegmentPath(v.dir, n) }

func segmentName(n uint64) string { return layout.SegmentName(n) }

type cpEntry struct {
	offset int64
	s      checkpoint.Signed
	ok     bool   // parsed (and, with a verifier, signature valid)
	why    string // why not
}

// file ranks for problem order.
const (
	rankStore = iota
	rankSegment
	rankCheckpoints = 1 << 62
	rankTrusted     = 1<<62 + 1
)

func (v *dirVerifier) problem(rank uint64, p *Problem) {
	v.seq++
	p.order = [3]uint64{rank, uint64(max(p.Offset, 0)), v.seq}
	v.rep.Problems = append(v.rep.Problems, p)
}

func (v *dirVerifier) run() error {
	fs := v.o.FS
	// The checkpoint log first: when a live directory is verified, the
	// segments listed and read after it hold at least what it covers.
	if err := v.readCheckpoints(); err != nil {
		return err
	}
	nums, err := layout.ListSegments(fs, v.dir)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	v.storeID, err = layout.ReadStoreID(fs, v.dir)
	if err != nil {
		if len(nums) == 0 {
			return fmt.Errorf("verify: %s is not a Vellum data directory: %w", v.dir, err)
		}
		v.problem(rankStore, &Problem{Check: CheckStore, File: "STORE", Offset: -1, Detail: "store identity unreadable: " + err.Error()})
	}
	v.rep.StoreID = hex.EncodeToString(v.storeID[:])
	if v.o.Origin == "" {
		v.o.Origin = "vellum/" + v.rep.StoreID
	}
	v.readPurged()
	nums = v.skipPurged(nums)
	v.rep.Segments = len(nums)
	results, err := v.segments(nums)
	if err != nil {
		return err
	}
	v.links(nums, results)
	v.checkpoints()
	v.anchors()
	v.coverage(results)
	v.witnessChecks()
	slices.SortStableFunc(v.rep.Problems, func(a, b *Problem) int {
		return slices.Compare(a.order[:], b.order[:])
	})
	return nil
}

// readCheckpoints loads the checkpoint log and the trusted checkpoint, so
// the segment workers know at which tree sizes to take roots.
func (v *dirVerifier) readCheckpoints() error {
	path := filepath.Join(v.dir, checkpoint.LogName)
	if _, err := v.o.FS.Stat(path); err != nil {
		v.cpLog = "there is no checkpoint log (" + checkpoint.LogName + " is missing)"
	}
	res, err := checkpoint.ReadLog(v.o.FS, path)
	var ce *checkpoint.CorruptError
	switch {
	case errors.As(err, &ce):
		// Damage with valid entries after it: report every damaged
		// stretch, and check every entry that still verifies.
		b, err := vfs.ReadFile(v.o.FS, path)
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		entries, damage := checkpoint.SalvageLog(b)
		res = &checkpoint.ReadResult{Entries: entries, TornAt: -1}
		for i, d := range damage {
			if i == len(damage)-1 && d.Offset+d.Length == int64(len(b)) {
				res.TornAt, res.TornReason = d.Offset, d.Reason
				break
			}
			v.problem(rankCheckpoints, &Problem{Check: CheckCheckpoint, File: checkpoint.LogName, Offset: d.Offset,
				Detail: d.Reason + "; a valid entry follows, so this was a complete checkpoint"})
			v.cpDamaged = append(v.cpDamaged, fmt.Sprintf("the entry at offset %d of %s is damaged", d.Offset, checkpoint.LogName))
		}
	case err != nil:
		return fmt.Errorf("verify: %w", err)
	}
	if res.TornAt >= 0 {
		v.rep.Warnings = append(v.rep.Warnings, fmt.Sprintf("%s: incomplete final entry at offset %d (%s); it was never a complete checkpoint", checkpoint.LogName, res.TornAt, res.TornReason))
	}
	v.roots = map[uint64]merkle.Hash{}
	for _, en := range res.Entries {
		var s checkpoint.Signed
		var err error
		if v.o.Verifier != nil {
			s, err = checkpoint.Open(en.Note, v.o.Verifier)
		} else {
			s, err = checkpoint.ParseNote(en.Note)
		}
		e := cpEntry{offset: en.Offset, s: s, ok: err == nil}
		if err != nil {
			check := CheckCheckpoint
			e.why = "it does not parse"
			if errors.Is(err, checkpoint.ErrSignature) {
				check, e.why = CheckSignature, "its signature does not verify"
			}
			v.problem(rankCheckpoints, &Problem{Check: check, File: checkpoint.LogName, Offset: en.Offset, Detail: err.Error()})
		} else {
			v.sizes = append(v.sizes, s.Size)
		}
		v.cps = append(v.cps, e)
	}
	v.rep.Checkpoints = len(v.cps)
	if len(v.o.Trusted) > 0 {
		s, err := checkpoint.Open(v.o.Trusted, v.o.Verifier)
		if err != nil {
			check := CheckCheckpoint
			if errors.Is(err, checkpoint.ErrSignature) {
				check = CheckSignature
			}
			v.problem(rankTrusted, &Problem{Check: check, File: "trusted checkpoint", Offset: -1, Detail: err.Error()})
		} else {
			v.trusted = &s
			v.sizes = append(v.sizes, s.Size)
		}
	}
	if err := v.readCosigned(); err != nil {
		return err
	}
	slices.Sort(v.sizes)
	v.sizes = slices.Compact(v.sizes)
	return nil
}

func (v *dirVerifier) segments(nums []uint64) ([]*segResult, error) {
	results := make([]*segResult, len(nums))
	var total int64
	sizes := make([]int64, len(nums))
	for i, n := range nums {
		fi, err := v.o.FS.Stat(v.segPath(n))
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		sizes[i] = fi.Size()
		total += sizes[i]
	}
	v.rep.Bytes = total
	var done atomic.Int64
	stop := make(chan struct{})
	var pwg sync.WaitGroup
	if v.o.Progress != nil {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					v.o.Progress(done.Load(), total)
				case <-stop:
					v.o.Progress(done.Load(), total)
					return
				}
			}
		}()
	}
	// With more than one worker, the records of the last segments are
	// hashed on a pool as well, so that every core has work while fewer
	// segments than workers are left (the tail of a store, or a store of
	// one segment). Earlier segments keep their hashing on their own
	// worker: every core is busy then, and handing records to the pool
	// costs a copy of each.
	var pool *hashPool
	if v.o.Workers > 1 {
		pool = newHashPool(v.o.Workers)
		defer pool.close()
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var ioErr error
	var mu sync.Mutex
	for w := 0; w < min(v.o.Workers, max(len(nums), 1)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte // one file buffer per worker, reused
			for {
				i := int(next.Add(1) - 1)
				if i >= len(nums) {
					return
				}
				// Once this segment is read in, the kernel starts reading
				// the one this worker's next will likely be; not before, so
				// that the first segments' reads have the disk to
				// themselves: every worker waits for them (on a cold
				// store, 55-77 ms against 80-96 ms: PERFORMANCE.md).
				prefetchNext := func() {
					if j := i + v.o.Workers; j < len(nums) {
						pwg.Add(1)
						go func() {
							defer pwg.Done()
							v.prefetch(nums[j], sizes[j])
						}()
					}
				}
				p := pool
				if len(nums)-i >= v.o.Workers && v.o.hashBatch == 0 {
					p = nil // enough segments left for every worker
				}
				r, err := v.segment(nums[i], i == len(nums)-1, &done, &buf, p, prefetchNext)
				if err != nil {
					mu.Lock()
					ioErr = err
					mu.Unlock()
					return
				}
				results[i] = r
			}
		}()
	}
	wg.Wait()
	close(stop)
	pwg.Wait()
	if ioErr != nil {
		return nil, ioErr
	}
	return results, nil
}

// prefetch starts reading segment num into the page cache, where files are
// mapped (see prefetchFile).
func (v *dirVerifier) prefetch(num uint64, size int64) {
	f, err := v.o.FS.Open(v.segPath(num))
	if err != nil {
		return // load reports it
	}
	prefetchFile(f, size)
	f.Close()
}

// load returns a segment's bytes: mapped when possible, else read into
// *buf (grown as needed and reused by the worker).
func (v *dirVerifier) load(path string, buf *[]byte) ([]byte, func(), error) {
	f, err := v.o.FS.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		return nil, nil, err
	}
	if b, unmap, ok := mapFile(f, n); ok {
		return b, unmap, nil
	}
	b, err := readInto(v.o.FS, path, buf)
	return b, func() {}, err
}

// readInto reads a whole file into *buf, growing it as needed.
func readInto(fs vfs.FS, path string, buf *[]byte) ([]byte, error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		return nil, err
	}
	if int64(cap(*buf)) < n {
		*buf = make([]byte, n+n/4)
	}
	b := (*buf)[:n]
	if m, err := f.ReadAt(b, 0); int64(m) != n {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}
