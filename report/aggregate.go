package report

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

// Filter selects the records a report counts: receipt time in [Since,
// Until) (zero: unbounded) and, when Tenants is not empty, those tenants.
type Filter struct {
	Since, Until time.Time
	Tenants      []string
}

func (f *Filter) bounds() (lo, hi int64) {
	lo, hi = 0, 1<<63-1
	if !f.Since.IsZero() {
		lo = f.Since.UnixNano()
	}
	if !f.Until.IsZero() {
		hi = f.Until.UnixNano()
	}
	return lo, hi
}

// Outcome indexes: the order of vellum.Statuses.
const nOutcomes = 6

// Day is one UTC calendar day's counts.
type Day struct {
	Date time.Time // midnight UTC
	// ByOutcome counts records by outcome status, indexed like
	// vellum.Statuses.
	ByOutcome [nOutcomes]uint64
	// ToolErrors counts tool results flagged is_error.
	ToolErrors uint64
}

// Total returns the day's records.
func (d *Day) Total() uint64 {
	var n uint64
	for _, c := range d.ByOutcome {
		n += c
	}
	return n
}

// Count is a name and how often it occurred.
type Count struct {
	Name string
	N    uint64
}

// Summary is what one pass over the store found.
type Summary struct {
	// Records is how many records matched the filter; Scanned how many
	// were read (spans outside the time range are skipped unread).
	Records, Scanned uint64
	// First and Last are the receipt times of the first and last matching
	// records.
	First, Last time.Time
	// Days has one entry per UTC day from the first to the last matching
	// record, in order (days without records are zero).
	Days []Day
	// ByOutcome totals Days.
	ByOutcome [nOutcomes]uint64
	// Actions, Tools and Tenants count records by action, tool.name (records
	// with a tool) and tenant_id, largest first.
	Actions, Tools, Tenants []Count
	// FailedTools counts outcome failure or tool errors by tool.name.
	FailedTools []Count
	// Redactions counts redaction hits by rule, and RedactedRecords the
	// records in which any rule fired.
	Redactions      []Count
	RedactedRecords uint64
	// Segments is how many segment files were read.
	Segments int
	// Elapsed is how long the pass took.
	Elapsed time.Duration
}

// partial is one worker's counts; merged at the end.
type partial struct {
	records, scanned uint64
	first, last      int64
	days             map[int64]*Day
	lastDay          int64 // the day of lastD: records come in time order
	lastD            *Day
	actions          map[string]*uint64
	tools            map[string]*uint64
	tenants          map[string]*uint64
	failedTools      map[string]*uint64
	redactions       map[string]*uint64
	redacted         uint64
}

func newPartial() *partial {
	return &partial{first: 1<<63 - 1, last: -1 << 63, days: map[int64]*Day{}, actions: map[string]*uint64{}, tools: map[string]*uint64{},
		tenants: map[string]*uint64{}, failedTools: map[string]*uint64{}, redactions: map[string]*uint64{}}
}

// inc counts key in m without allocating when key is already there (the
// compiler does not copy string(b) for a map lookup).
func inc(m map[string]*uint64, key []byte, n uint64) {
	if p, ok := m[string(key)]; ok {
		*p += n
		return
	}
	v := n
	m[string(key)] = &v
}

// statusOf returns the index of status in vellum.Statuses, or -1.
func statusOf(status []byte) int {
	for i, s := range vellum.Statuses {
		if string(status) == s {
			return i
		}
	}
	return -1
}

const nsPerDay = int64(24 * time.Hour)

// add counts one matching record.
func (p *partial) add(f *fields) error {
	p.records++
	p.first, p.last = min(p.first, f.time), max(p.last, f.time)
	day := f.time / nsPerDay
	if f.time < 0 && f.time%nsPerDay != 0 {
		day--
	}
	d := p.lastD
	if d == nil || day != p.lastDay {
		if d = p.days[day]; d == nil {
			d = &Day{Date: time.Unix(0, day*nsPerDay).UTC()}
			p.days[day] = d
		}
		p.lastDay, p.lastD = day, d
	}
	oi := statusOf(f.status)
	if oi < 0 {
		return fmt.Errorf("report: unknown outcome status %q", f.status)
	}
	d.ByOutcome[oi]++
	if f.toolError {
		d.ToolErrors++
	}
	inc(p.actions, f.action, 1)
	inc(p.tenants, f.tenant, 1)
	if len(f.tool) > 0 {
		inc(p.tools, f.tool, 1)
		if f.toolError || oi == 1 { // failure
			inc(p.failedTools, f.tool, 1)
		}
	}
	if f.nRedact > 0 {
		p.redacted++
		return f.eachRedaction(func(rule []byte, c uint64) { inc(p.redactions, rule, c) })
	}
	return nil
}

func (p *partial) merge(o *partial) {
	p.records += o.records
	p.scanned += o.scanned
	p.first, p.last = min(p.first, o.first), max(p.last, o.last)
	for k, d := range o.days {
		if e := p.days[k]; e != nil {
			for i := range e.ByOutcome {
				e.ByOutcome[i] += d.ByOutcome[i]
			}
			e.ToolErrors += d.ToolErrors
		} else {
			p.days[k] = d
		}
	}
	for _, m := range []struct{ dst, src map[string]*uint64 }{
		{p.actions, o.actions}, {p.tools, o.tools}, {p.tenants, o.tenants}, {p.failedTools, o.failedTools}, {p.redactions, o.redactions},
	} {
		for k, v := range m.src {
			inc(m.dst, []byte(k), *v)
		}
	}
	p.redacted += o.redacted
}

func sorted(m map[string]*uint64) []Count {
	out := make([]Count, 0, len(m))
	for k, v := range m {
		out = append(out, Count{k, *v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].N != out[j].N {
			return out[i].N > out[j].N
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// AggregateOptions tune Aggregate. The zero value works.
type AggregateOptions struct {
	// FS is the file system; vfs.Default when nil.
	FS vfs.FS
	// Workers is how many segments are read at once (default GOMAXPROCS).
	Workers int
	// Progress, when set, is called after each segment with the segments
	// done and the total. It may be called from several goroutines, one
	// call at a time.
	Progress func(done, total int)
}

// Aggregate reads the data directory dir once, read-only and without a
// lock (beside a running server, or on a copy), and counts the records
// that match f: per day and outcome, by action, tool, tenant and
// redaction rule. Segments are read in parallel; spans whose time range
// lies outside f are skipped unread. Damage in a segment is an error
// naming it (the report is no verifier: `vellum verify` is).
func Aggregate(ctx context.Context, dir string, f Filter, opts *AggregateOptions) (*Summary, error) {
	start := time.Now()
	if opts == nil {
		opts = &AggregateOptions{}
	}
	fs := opts.FS
	if fs == nil {
		fs = vfs.Default
	}
	nums, err := layout.ListSegments(fs, dir)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, len(nums)))
	lo, hi := f.bounds()
	tenants := map[string]bool{}
	for _, t := range f.Tenants {
		tenants[t] = true
	}
	jobs := make(chan int)
	var (
		mu       sync.Mutex
		firstErr error
		done     int
		total    = newPartial()
		wg       sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := newPartial()
			sc := &segment.Scratch{}
			for i := range jobs {
				err := readSegment(ctx, fs, layout.SegmentPath(dir, nums[i]), i == len(nums)-1, lo, hi, tenants, p, sc)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				done++
				if opts.Progress != nil {
					opts.Progress(done, len(nums))
				}
				mu.Unlock()
			}
			mu.Lock()
			total.merge(p)
			mu.Unlock()
		}()
	}
feed:
	for i := range nums {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed {
			break
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return total.summary(len(nums), time.Since(start)), nil
}

func (p *partial) summary(segments int, elapsed time.Duration) *Summary {
	s := &Summary{Records: p.records, Scanned: p.scanned, Segments: segments, Elapsed: elapsed, RedactedRecords: p.redacted,
		Actions: sorted(p.actions), Tools: sorted(p.tools), Tenants: sorted(p.tenants), FailedTools: sorted(p.failedTools), Redactions: sorted(p.redactions)}
	if p.records == 0 {
		return s
	}
	s.First, s.Last = time.Unix(0, p.first).UTC(), time.Unix(0, p.last).UTC()
	keys := make([]int64, 0, len(p.days))
	for k := range p.days {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for k := keys[0]; k <= keys[len(keys)-1]; k++ {
		d := p.days[k]
		if d == nil {
			d = &Day{Date: time.Unix(0, k*nsPerDay).UTC()}
		}
		s.Days = append(s.Days, *d)
		for i := range d.ByOutcome {
			s.ByOutcome[i] += d.ByOutcome[i]
		}
	}
	return s
}

// readSegment counts the matching records of one segment: a sealed one by
// its footer's spans, the last one (possibly active) by scanning it.
func readSegment(ctx context.Context, fs vfs.FS, path string, last bool, lo, hi int64, tenants map[string]bool, p *partial, sc *segment.Scratch) error {
	var f fields
	visit := func(enc []byte, seq uint64) error {
		p.scanned++
		if err := parseFields(enc, &f); err != nil {
			return fmt.Errorf("%w (%s seq %d)", err, path, seq)
		}
		if f.time < lo || f.time >= hi || (len(tenants) > 0 && !tenants[string(f.tenant)]) {
			return nil
		}
		if err := p.add(&f); err != nil {
			return fmt.Errorf("%w (%s seq %d)", err, path, seq)
		}
		return nil
	}
	r, err := segment.Open(fs, path, nil)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	defer r.Close()
	ft := r.Footer()
	if ft == nil {
		if !last {
			return fmt.Errorf("report: %s is not sealed but later segments exist", path)
		}
		// The active segment: a scan reads up to its last commit (a torn
		// tail is not counted: it was never acknowledged).
		_, err := segment.Scan(fs, path, nil, func(en segment.Entry) error { return visit(en.Record, en.Seq) })
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		return nil
	}
	for i, sp := range ft.Spans {
		if sp.Count == 0 || sp.LastTime < lo || sp.FirstTime >= hi {
			continue
		}
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		es, err := r.ReadSpanScratch(sp, sc)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		for _, en := range es {
			if err := visit(en.Record, en.Seq); err != nil {
				return err
			}
		}
	}
	return nil
}
