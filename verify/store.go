package verify

import (
	"fmt"
	"iter"
	"path/filepath"
	"sort"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/merkle"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

// Store is a read-only view of a data directory for exporting evidence:
// records with their canonical encodings, inclusion proofs, and the
// checkpoint log. It takes no lock and writes nothing, so it works on a
// copy or beside a running server. It trusts the files for navigation
// only; what it exports is checked by whoever verifies the bundle. Not safe
// for concurrent use.
type Store struct {
	fs   vfs.FS
	dir  string
	segs []*storeSeg
	last uint64
	// pruned is the compact range of the records retention purged, nil
	// when none were: proofs of later records need it (merkle.Pruned).
	pruned *merkle.Range
}

type storeSeg struct {
	num    uint64
	path   string
	r      *segment.Reader
	first  uint64
	last   uint64 // first-1 when empty
	keyID  string
	spans  []segment.Span
	sec    *merkle.Section // sealed segments with a Merkle section
	leaves []merkle.Hash   // the unsealed last segment's leaves
}

// OpenStore opens the data directory dir read-only.
func OpenStore(fs vfs.FS, dir string) (*Store, error) {
	if fs == nil {
		fs = vfs.Default
	}
	nums, err := layout.ListSegments(fs, dir)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	s := &Store{fs: fs, dir: dir}
	if m, err := layout.ReadPurged(fs, dir); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	} else if m != nil {
		for len(nums) > 0 && nums[0] <= m.Through {
			nums = nums[1:] // left by an interrupted purge
		}
		hs := make([]merkle.Hash, len(m.Range))
		for i, h := range m.Range {
			hs[i] = merkle.Hash(h)
		}
		if s.pruned, err = merkle.RangeFrom(0, m.LastSeq, hs); err != nil {
			return nil, fmt.Errorf("verify: %s: %w", layout.PurgedName, err)
		}
	}
	for i, n := range nums {
		path := layout.SegmentPath(dir, n)
		r, err := segment.Open(fs, path, nil)
		if err != nil {
			s.Close()
			return nil, err
		}
		sg := &storeSeg{num: n, path: path, r: r, first: r.Header().FirstSeq, keyID: r.Header().KeyID.String()}
		if ft := r.Footer(); ft != nil {
			sg.spans, sg.last = ft.Spans, ft.LastSeq
			if ft.Count == 0 {
				sg.last = sg.first - 1
			}
			if b, ok := ft.Sections[merkle.SectionType]; ok {
				if sg.sec, err = merkle.ParseSection(b); err != nil {
					s.Close()
					return nil, fmt.Errorf("verify: %s: %w", path, err)
				}
			}
		} else {
			if i != len(nums)-1 {
				s.Close()
				return nil, fmt.Errorf("%w: %s is not sealed but later segments exist", segment.ErrCorrupt, path)
			}
			var h merkle.Hasher
			sr, err := segment.Scan(fs, path, nil, func(en segment.Entry) error {
				sg.leaves = append(sg.leaves, h.Leaf(en.Record, en.MAC))
				return nil
			})
			if err != nil {
				s.Close()
				return nil, err
			}
			sg.spans, sg.last = sr.Spans(), sr.State.LastSeq
		}
		s.segs = append(s.segs, sg)
		s.last = sg.last
	}
	return s, nil
}

// Close closes the segment files.
func (s *Store) Close() error {
	for _, sg := range s.segs {
		sg.r.Close()
	}
	return nil
}

// LastSeq returns the seq of the last committed record.
func (s *Store) LastSeq() uint64 { return s.last }

// FirstSeq returns the seq of the oldest record the store holds.
func (s *Store) FirstSeq() uint64 {
	if len(s.segs) == 0 {
		return 1
	}
	return s.segs[0].first
}

// Checkpoints returns the checkpoint log's entries (unverified).
func (s *Store) Checkpoints() ([]checkpoint.Entry, error) {
	res, err := checkpoint.ReadLog(s.fs, filepath.Join(s.dir, checkpoint.LogName))
	if err != nil {
		return nil, err
	}
	return res.Entries, nil
}

// StoredRecord is a record as stored: decoded, and its canonical encoding.
type StoredRecord struct {
	Record   vellum.Record
	Encoding []byte
}

func (s *Store) seg(seq uint64) *storeSeg {
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].last >= seq })
	if i == len(s.segs) || s.segs[i].first > seq {
		return nil
	}
	return s.segs[i]
}

// entries yields the stored entries with seq in [from, to].
func (s *Store) entries(from, to uint64) iter.Seq2[*storeSeg, segment.Entry] {
	return func(yield func(*storeSeg, segment.Entry) bool) {
		for seq := from; seq <= to; {
			sg := s.seg(seq)
			if sg == nil {
				return
			}
			i := sort.Search(len(sg.spans), func(i int) bool { return sg.spans[i].LastSeq() >= seq })
			for ; i < len(sg.spans) && seq <= to; i++ {
				es, err := sg.r.ReadSpan(sg.spans[i])
				if err != nil {
					yield(sg, segment.Entry{Seq: 0, Offset: -1, Record: []byte(err.Error())})
					return
				}
				for _, en := range es {
					if en.Seq >= seq && en.Seq <= to {
						if !yield(sg, en) {
							return
						}
					}
				}
				seq = sg.spans[i].LastSeq() + 1
			}
			if seq <= sg.last {
				return
			}
		}
	}
}

// Records yields the records with seq in [from, to] in order.
func (s *Store) Records(from, to uint64) iter.Seq2[StoredRecord, error] {
	return func(yield func(StoredRecord, error) bool) {
		for sg, en := range s.entries(from, to) {
			if en.Offset < 0 {
				yield(StoredRecord{}, fmt.Errorf("verify: %s", en.Record))
				return
			}
			var r vellum.Record
			if err := r.UnmarshalBinary(en.Record); err != nil {
				yield(StoredRecord{}, fmt.Errorf("verify: %s offset %d seq %d: %w", sg.path, en.Offset, en.Seq, err))
				return
			}
			r.KeyID, r.PrevMAC, r.MAC = sg.keyID, en.PrevMAC, en.MAC
			enc := append([]byte(nil), en.Record...)
			if !yield(StoredRecord{Record: r, Encoding: enc}, nil) {
				return
			}
		}
	}
}

// Source returns a merkle.Source over the store, for proofs.
func (s *Store) Source() merkle.Source { return storeSource{s} }

type storeSource struct{ s *Store }

// Pruned returns the compact range of the purged records (merkle.Pruned).
func (ss storeSource) Pruned() *merkle.Range { return ss.s.pruned }

func (ss storeSource) StoredNode(level uint, index uint64) (merkle.Hash, bool, error) {
	sg := ss.s.seg((index + 1) << level)
	if sg == nil || sg.sec == nil {
		return merkle.Hash{}, false, nil
	}
	h, ok := sg.sec.Node(level, index)
	return h, ok, nil
}

func (ss storeSource) Leaves(from, to uint64) ([]merkle.Hash, error) {
	out := make([]merkle.Hash, 0, to-from)
	var h merkle.Hasher
	seq := from + 1
	for seq <= to {
		sg := ss.s.seg(seq)
		if sg == nil {
			return nil, fmt.Errorf("%w: seq %d is not in the store", merkle.ErrSize, seq)
		}
		if sg.leaves != nil {
			end := min(to, sg.last)
			out = append(out, sg.leaves[seq-sg.first:end-sg.first+1]...)
			seq = end + 1
			continue
		}
		for _, en := range ss.s.entries(seq, min(to, sg.last)) {
			if en.Offset < 0 {
				return nil, fmt.Errorf("verify: %s", en.Record)
			}
			out = append(out, h.Leaf(en.Record, en.MAC))
		}
		seq = min(to, sg.last) + 1
	}
	if uint64(len(out)) != to-from {
		return nil, fmt.Errorf("verify: read %d leaves for [%d, %d)", len(out), from, to)
	}
	return out, nil
}
