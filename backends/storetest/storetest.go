package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/query"
)

// Env is what a store under test is opened with.
type Env struct {
	// Keys chains records (Key() as the active key).
	Keys *chain.Keyring
	// Now is the store's clock: it returns what the test set with Clock.
	Now func() time.Time
	// MaxRecordSize is the limit the store must enforce.
	MaxRecordSize int
}

// Open returns a new, empty store for one test; the test closes it.
type Open func(t *testing.T, env Env) backends.Store

// Caps says which cases apply to a store.
type Caps struct {
	// Discards: the store accepts records and keeps nothing (null).
	Discards bool
}

// MaxRecordSize is the record size limit stores are opened with.
const MaxRecordSize = 64 << 10

// Key returns the fixed HMAC key of the suite.
func Key() *chain.Key {
	k, err := chain.NewKey(bytes.Repeat([]byte{0x5e}, 32))
	if err != nil {
		panic(err)
	}
	return k
}

// Clock is a settable clock: stores stamp records from it, so equal
// sequences of calls give equal receipt times in every store.
type Clock struct{ ns atomic.Int64 }

// Base is where every Clock starts.
var Base = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

// NewClock returns a clock at Base.
func NewClock() *Clock {
	c := &Clock{}
	c.ns.Store(Base.UnixNano())
	return c
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

var ctx = context.Background()

// Run runs every case of the suite against stores from open.
func Run(t *testing.T, open Open, caps Caps) {
	cases := []struct {
		name    string
		discard bool // applies to a store that discards
		run     func(t *testing.T, s backends.Store, c *Clock)
	}{
		{"RoundTripEveryField", false, testRoundTrip},
		{"Chain", false, testChain},
		{"Dedup", false, testDedup},
		{"Filters", false, testFilters},
		{"Orders", false, testOrders},
		{"PagingWhileAppending", false, testPagingConcurrent},
		{"SinceUntilEdges", false, testSinceUntil},
		{"TenantScope", false, testTenantScope},
		{"GetMissing", true, testGetMissing},
		{"BadInput", true, testBadInput},
		{"Discards", true, testDiscards},
		{"Closed", true, testClosed},
	}
	for _, tc := range cases {
		if caps.Discards && !tc.discard {
			continue
		}
		if !caps.Discards && tc.name == "Discards" {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			c := NewClock()
			s := open(t, Env{Keys: chain.NewKeyring(Key()), Now: c.Now, MaxRecordSize: MaxRecordSize})
			defer s.Close()
			tc.run(t, s, c)
		})
	}
}

// Full returns a record with every producer field set, distinct per i.
func Full(i int) vellum.Record {
	return vellum.Record{
		EventID:   fmt.Sprintf("evt-%d", i),
		EventTime: time.Date(2026, 11, 26, 23, 59, 59, 123456789, time.UTC).Add(time.Duration(i) * time.Second),
		TenantID:  "acme", UserID: "alice", Service: "billing-bot", AuthMode: "gateway",
		Action: "tool.call",
		Tool: vellum.Tool{Name: "web_search", CallID: fmt.Sprintf("call_%d", i),
			Arguments: json.RawMessage(`{"query":"weather in Paris","n":3,"nested":{"a":[1,2,{"b":null}]}}`),
			IsError:   true, DurationNS: 1_234_567_890},
		Model: vellum.Model{Name: "granite-3.3-8b", Provider: "vllm", FinishReason: "tool_calls",
			InputTokens: 1 << 40, OutputTokens: 77},
		Agent: "support-bot", SessionID: "sess-1", TraceID: "trace_0123456789abcdef", RequestID: fmt.Sprintf("req-%d", i),
		Outcome: vellum.Outcome{Status: vellum.StatusDenied, Reason: "rule said no — ünïcödé ✓", RuleID: "rule-7",
			Approver: "bob", Mode: "enforce"},
		Attributes: map[string]string{"region": "eu-west-1", "long": strings.Repeat("x", 700), "empty": ""},
		Redactions: []vellum.Redaction{{Rule: "email", Field: "tool.arguments.query", Count: 2}, {Rule: "phone", Field: "outcome.reason", Count: 1}},
	}
}

// canon returns r's JSON without the chain's values (which depend on the
// store's genesis), for comparing records across stores.
func canon(r vellum.Record) string {
	r.PrevMAC, r.MAC = vellum.MAC{}, vellum.MAC{}
	b, _ := json.Marshal(r)
	return string(b)
}

func mustAppend(t *testing.T, s backends.Store, recs ...vellum.Record) []uint64 {
	t.Helper()
	seqs, err := s.Append(ctx, recs...)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if len(seqs) != len(recs) {
		t.Fatalf("Append returned %d seqs for %d records", len(seqs), len(recs))
	}
	return seqs
}

func testRoundTrip(t *testing.T, s backends.Store, c *Clock) {
	c.Set(Base.Add(123456789 * time.Nanosecond))
	in := Full(1)
	// Fields the store assigns are ignored on input.
	in.Seq, in.Time, in.KeyID, in.MAC = 999, time.Unix(5, 0), "bogus", vellum.MAC{1}
	seqs := mustAppend(t, s, in)
	got, err := s.Get(ctx, seqs[0])
	if err != nil {
		t.Fatal(err)
	}
	want := Full(1)
	want.Seq, want.Time, want.KeyID = 1, Base.Add(123456789*time.Nanosecond), Key().ID().String()
	if seqs[0] != 1 {
		t.Errorf("first seq = %d, want 1", seqs[0])
	}
	if canon(got) != canon(want) {
		t.Errorf("round trip:\n got %s\nwant %s", canon(got), canon(want))
	}
	if got.MAC.IsZero() || got.PrevMAC.IsZero() {
		t.Errorf("MAC %s / PrevMAC %s not set", got.MAC, got.PrevMAC)
	}
	// Arguments byte for byte (the MAC covers them).
	if !bytes.Equal(got.Tool.Arguments, Full(1).Tool.Arguments) {
		t.Errorf("arguments %s, want %s", got.Tool.Arguments, Full(1).Tool.Arguments)
	}
	// The record comes back from Query too, identically.
	page, err := s.Query(ctx, query.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 1 || canon(page.Records[0]) != canon(want) || page.Records[0].MAC != got.MAC {
		t.Errorf("Query returned %d records, first %v", len(page.Records), page.Records)
	}
	// A minimal record: absent optional fields stay absent.
	seqs = mustAppend(t, s, vellum.Record{Action: "model.decision", Outcome: vellum.Outcome{Status: vellum.StatusSuccess}})
	got, err = s.Get(ctx, seqs[0])
	if err != nil {
		t.Fatal(err)
	}
	if got.Seq != 2 || got.Action != "model.decision" || !got.EventTime.IsZero() || got.Tool.Arguments != nil ||
		got.Attributes != nil || got.Redactions != nil || got.TenantID != "" {
		t.Errorf("minimal record came back as %+v", got)
	}
}

func testChain(t *testing.T, s backends.Store, c *Clock) {
	var all []vellum.Record
	for i := range 5 {
		c.Advance(time.Millisecond)
		mustAppend(t, s, Full(i), Full(100+i))
	}
	for seq := uint64(1); seq <= 10; seq++ {
		r, err := s.Get(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, r)
	}
	h := Key().NewHasher()
	for i, r := range all {
		enc, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Check(r.Seq, r.PrevMAC, enc, r.MAC); err != nil {
			t.Errorf("seq %d: %v", r.Seq, err)
		}
		if i > 0 {
			if r.PrevMAC != all[i-1].MAC {
				t.Errorf("seq %d: prev MAC is not the MAC of seq %d", r.Seq, all[i-1].Seq)
			}
			if !r.Time.After(all[i-1].Time) {
				t.Errorf("seq %d: time %v is not after %v", r.Seq, r.Time, all[i-1].Time)
			}
		}
	}
}

func testDedup(t *testing.T, s backends.Store, c *Clock) {
	a := Full(1)
	first := mustAppend(t, s, a)[0]
	retry := Full(1)
	retry.Outcome.Reason = "a retry with other content"
	if got := mustAppend(t, s, retry)[0]; got != first {
		t.Errorf("retried event got seq %d, want the first's %d", got, first)
	}
	other := Full(1)
	other.TenantID = "globex" // same event id, other tenant: a new event
	second := mustAppend(t, s, other)[0]
	if second == first {
		t.Errorf("same event id in another tenant was deduplicated")
	}
	// Within one call, and mixed with new events.
	seqs := mustAppend(t, s, Full(2), Full(2), Full(1), Full(3))
	if seqs[0] != seqs[1] || seqs[2] != first || seqs[3] == seqs[0] {
		t.Errorf("seqs %v: want [x x %d y]", seqs, first)
	}
	// Records without an event id are never deduplicated.
	anon := vellum.Record{Action: "tool.call", Outcome: vellum.Outcome{Status: vellum.StatusSuccess}}
	seqs = mustAppend(t, s, anon, anon)
	if seqs[0] == seqs[1] {
		t.Errorf("records without event ids were deduplicated: %v", seqs)
	}
	all := readAll(t, s)
	if len(all) != 6 {
		t.Errorf("the store holds %d records, want 6", len(all))
	}
	got, err := s.Get(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if got.Outcome.Reason != a.Outcome.Reason {
		t.Errorf("the retry replaced the first copy: reason %q", got.Outcome.Reason)
	}
}

// readAll pages through the whole store in ascending order.
func readAll(t *testing.T, s backends.Store) []vellum.Record {
	t.Helper()
	return pageAll(t, s, query.Query{Limit: query.MaxLimit})
}

// pageAll pages through q's answer with Page.Next.
func pageAll(t *testing.T, s backends.Store, q query.Query) []vellum.Record {
	t.Helper()
	var out []vellum.Record
	for i := 0; ; i++ {
		page, err := s.Query(ctx, q)
		if err != nil {
			t.Fatalf("Query(%+v): %v", q, err)
		}
		out = append(out, page.Records...)
		if page.Next == nil {
			return out
		}
		if len(page.Records) != q.Limit && q.Limit != 0 {
			t.Fatalf("a page with Next holds %d records, limit %d", len(page.Records), q.Limit)
		}
		if i > 100_000 {
			t.Fatal("paging does not end")
		}
		q.After = page.Next
	}
}

// Dataset appends n varied records, one call per 1-5 records with the
// clock advanced between calls, and returns them as stored (Get).
func Dataset(t *testing.T, s backends.Store, c *Clock, n int) []vellum.Record {
	t.Helper()
	tenants := []string{"acme", "globex", "initech", "umbrella"}
	actions := []string{"tool.call", "tool.result", "approval.requested", "approval.granted", "approval", "model.decision", "tool_x.call"}
	var seqs []uint64
	for i := 0; i < n; {
		k := min(1+i%5, n-i)
		recs := make([]vellum.Record, k)
		for j := range recs {
			x := i + j
			recs[j] = vellum.Record{
				EventID:   fmt.Sprintf("e-%d", x),
				TenantID:  tenants[x%len(tenants)],
				UserID:    fmt.Sprintf("user-%d", x%7),
				SessionID: fmt.Sprintf("s-%d", x%5),
				TraceID:   fmt.Sprintf("t-%d", x%11),
				Action:    actions[x%len(actions)],
				Tool:      vellum.Tool{Name: []string{"", "web_search", "read_file"}[x%3], Arguments: json.RawMessage(fmt.Sprintf(`{"i":%d}`, x))},
				Model:     vellum.Model{Name: []string{"m1", "m2", ""}[x%3]},
				Outcome:   vellum.Outcome{Status: vellum.Statuses[x%len(vellum.Statuses)]},
			}
			if x%4 != 3 { // some records have no event time
				recs[j].EventTime = Base.Add(-time.Duration(x%17) * time.Minute)
			}
		}
		// Some calls share a nanosecond clock reading; the store still
		// gives strictly increasing times.
		if i%3 != 0 {
			c.Advance(time.Duration(1+i%4) * time.Millisecond)
		}
		seqs = append(seqs, mustAppend(t, s, recs...)...)
		i += k
	}
	out := make([]vellum.Record, len(seqs))
	for i, seq := range seqs {
		r, err := s.Get(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = r
	}
	return out
}

// Queries returns the queries the suite checks against an oracle, over
// records recs: every filter, the action prefix, the tenant scope, time
// ranges, both orders, small pages.
func Queries(recs []vellum.Record) []query.Query {
	mid := recs[len(recs)/2].Time
	q1 := recs[len(recs)/4].Time
	var qs []query.Query
	base := []query.Query{
		{},
		{TenantID: "acme"},
		{UserID: "user-3"},
		{SessionID: "s-2"},
		{TraceID: "t-4"},
		{Tool: "web_search"},
		{Outcome: vellum.StatusDenied},
		{Model: "m2"},
		{Action: "tool.call"},
		{Action: "approval."},
		{Action: "approval"},
		{Action: "tool."},
		{Tenants: []string{"globex", "acme"}},
		{TenantID: "acme", Tenants: []string{"globex"}},
		{Since: mid},
		{Until: mid},
		{Since: q1, Until: mid, TenantID: "globex", Action: "tool."},
		{Since: mid, Until: mid},
		{TenantID: "initech", Action: "approval.granted", Outcome: vellum.StatusFailure},
		{TenantID: "nobody"},
		{EventSince: Base.Add(-8 * time.Minute)},
		{EventUntil: Base.Add(-8 * time.Minute)},
		{EventSince: Base.Add(-12 * time.Minute), EventUntil: Base.Add(-3 * time.Minute), TenantID: "acme"},
		{MaxSeq: recs[len(recs)/3].Seq},
		{MaxSeq: recs[len(recs)/3].Seq, Since: q1, Action: "approval."},
	}
	for _, q := range base {
		for _, desc := range []bool{false, true} {
			for _, limit := range []int{3, 1000} {
				q := q
				q.Desc, q.Limit = desc, limit
				qs = append(qs, q)
			}
		}
	}
	return qs
}

// Oracle returns the records of recs matching q, in q's order (every one,
// ignoring Limit).
func Oracle(recs []vellum.Record, q query.Query) []vellum.Record {
	if err := q.Normalize(); err != nil {
		panic(err)
	}
	var out []vellum.Record
	for i := range recs {
		if q.Match(&recs[i]) {
			out = append(out, recs[i])
		}
	}
	if q.Desc {
		slices.Reverse(out)
	}
	return out
}

func seqsOf(recs []vellum.Record) []uint64 {
	out := make([]uint64, len(recs))
	for i := range recs {
		out[i] = recs[i].Seq
	}
	return out
}

func testFilters(t *testing.T, s backends.Store, c *Clock) {
	recs := Dataset(t, s, c, 200)
	for _, q := range Queries(recs) {
		want := Oracle(recs, q)
		got := pageAll(t, s, q)
		if !slices.Equal(seqsOf(got), seqsOf(want)) {
			t.Errorf("query %+v:\n got %v\nwant %v", q, seqsOf(got), seqsOf(want))
			continue
		}
		for i := range got {
			if canon(got[i]) != canon(want[i]) || got[i].MAC != want[i].MAC {
				t.Errorf("query %+v: record %d differs from Get's", q, got[i].Seq)
				break
			}
		}
	}
}

func testOrders(t *testing.T, s backends.Store, c *Clock) {
	recs := Dataset(t, s, c, 30)
	asc := pageAll(t, s, query.Query{Limit: 4})
	desc := pageAll(t, s, query.Query{Limit: 4, Desc: true})
	if len(asc) != len(recs) || len(desc) != len(recs) {
		t.Fatalf("asc %d, desc %d records, want %d", len(asc), len(desc), len(recs))
	}
	for i := range asc {
		if asc[i].Seq != recs[i].Seq || desc[len(desc)-1-i].Seq != recs[i].Seq {
			t.Fatalf("position %d: asc seq %d, desc seq %d, want %d", i, asc[i].Seq, desc[len(desc)-1-i].Seq, recs[i].Seq)
		}
	}
	// A full last page carries Next; the page after it is empty.
	page, err := s.Query(ctx, query.Query{Limit: 30})
	if err != nil {
		t.Fatal(err)
	}
	if page.Next == nil {
		t.Fatal("a full page has no Next")
	}
	page, err = s.Query(ctx, query.Query{Limit: 30, After: page.Next})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 0 || page.Next != nil {
		t.Errorf("after the last record: %d records, next %v", len(page.Records), page.Next)
	}
	page, err = s.Query(ctx, query.Query{Limit: 31})
	if err != nil {
		t.Fatal(err)
	}
	if page.Next != nil || len(page.Records) != 30 {
		t.Errorf("a short page: %d records, next %v", len(page.Records), page.Next)
	}
}

func testPagingConcurrent(t *testing.T, s backends.Store, c *Clock) {
	before := Dataset(t, s, c, 60)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var appendErr atomic.Value
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			c.Advance(time.Microsecond)
			r := Full(10_000 + i)
			if _, err := s.Append(ctx, r); err != nil {
				appendErr.Store(err)
				return
			}
		}
	}()
	for _, desc := range []bool{false, true} {
		q := query.Query{Limit: 7, Desc: desc, TenantID: "acme"}
		var got []vellum.Record
		for {
			page, err := s.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, page.Records...)
			if page.Next == nil || len(got) > 10_000 {
				break
			}
			q.After = page.Next
			time.Sleep(time.Millisecond)
		}
		seen := map[uint64]bool{}
		for i, r := range got {
			if seen[r.Seq] {
				t.Fatalf("desc=%v: seq %d returned twice", desc, r.Seq)
			}
			seen[r.Seq] = true
			if i > 0 && (desc && r.Seq > got[i-1].Seq || !desc && r.Seq < got[i-1].Seq) {
				t.Fatalf("desc=%v: seq %d after %d", desc, r.Seq, got[i-1].Seq)
			}
		}
		for _, r := range before {
			if r.TenantID == "acme" && !seen[r.Seq] {
				t.Errorf("desc=%v: seq %d, there before paging began, was skipped", desc, r.Seq)
			}
		}
	}
	close(stop)
	wg.Wait()
	if err, ok := appendErr.Load().(error); ok {
		t.Fatal(err)
	}
}

func testSinceUntil(t *testing.T, s backends.Store, c *Clock) {
	recs := Dataset(t, s, c, 20)
	since, until := recs[5].Time, recs[10].Time
	got := pageAll(t, s, query.Query{Since: since, Until: until})
	if !slices.Equal(seqsOf(got), seqsOf(recs[5:10])) {
		t.Errorf("[since, until) = %v, want %v (since inclusive, until exclusive)", seqsOf(got), seqsOf(recs[5:10]))
	}
	// One nanosecond either side.
	got = pageAll(t, s, query.Query{Since: since.Add(1), Until: until.Add(1)})
	if !slices.Equal(seqsOf(got), seqsOf(recs[6:11])) {
		t.Errorf("[since+1ns, until+1ns) = %v, want %v", seqsOf(got), seqsOf(recs[6:11]))
	}
	// In another zone: the same instant.
	got = pageAll(t, s, query.Query{Since: since.In(time.FixedZone("x", 5*3600)), Until: until})
	if len(got) != 5 {
		t.Errorf("since in +05:00 gave %d records, want 5", len(got))
	}
	if got := pageAll(t, s, query.Query{Since: until, Until: until}); len(got) != 0 {
		t.Errorf("an empty range returned %d records", len(got))
	}
	if got := pageAll(t, s, query.Query{Since: recs[19].Time.Add(1)}); len(got) != 0 {
		t.Errorf("since after the last record returned %d", len(got))
	}
	if got := pageAll(t, s, query.Query{Until: recs[0].Time}); len(got) != 0 {
		t.Errorf("until the first record returned %d", len(got))
	}
}

func testTenantScope(t *testing.T, s backends.Store, c *Clock) {
	recs := Dataset(t, s, c, 40)
	for _, q := range []query.Query{
		{Tenants: []string{"acme"}},
		{Tenants: []string{"acme", "umbrella"}, Desc: true, Limit: 5},
		{Tenants: []string{"acme"}, TenantID: "globex"},
		{Tenants: []string{"nobody"}},
	} {
		got := pageAll(t, s, q)
		want := Oracle(recs, q)
		if !slices.Equal(seqsOf(got), seqsOf(want)) {
			t.Errorf("%+v: got %v, want %v", q, seqsOf(got), seqsOf(want))
		}
		for _, r := range got {
			if !slices.Contains(q.Tenants, r.TenantID) {
				t.Errorf("%+v returned tenant %q", q, r.TenantID)
			}
		}
	}
}

func testGetMissing(t *testing.T, s backends.Store, c *Clock) {
	mustAppend(t, s, Full(1))
	for _, seq := range []uint64{0, 2, 1 << 40, 1<<64 - 1} {
		if _, err := s.Get(ctx, seq); !errors.Is(err, backends.ErrNotFound) {
			t.Errorf("Get(%d) = %v, want ErrNotFound", seq, err)
		}
	}
}

func testBadInput(t *testing.T, s backends.Store, c *Clock) {
	bad := []struct {
		name string
		recs []vellum.Record
		want error
	}{
		{"no action", []vellum.Record{{Outcome: vellum.Outcome{Status: "success"}}}, backends.ErrInvalid},
		{"bad status", []vellum.Record{{Action: "tool.call", Outcome: vellum.Outcome{Status: "maybe"}}}, backends.ErrInvalid},
		{"bad arguments", []vellum.Record{{Action: "tool.call", Tool: vellum.Tool{Arguments: json.RawMessage(`{"a":`)}, Outcome: vellum.Outcome{Status: "success"}}}, backends.ErrInvalid},
		{"one bad of three", []vellum.Record{Full(1), {Action: "Tool Call", Outcome: vellum.Outcome{Status: "success"}}, Full(2)}, backends.ErrInvalid},
		{"too large", []vellum.Record{{Action: "tool.call", Outcome: vellum.Outcome{Status: "success"}, Attributes: map[string]string{"big": strings.Repeat("y", MaxRecordSize)}}}, backends.ErrTooLarge},
	}
	for _, tc := range bad {
		seqs, err := s.Append(ctx, tc.recs...)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: Append = %v, %v; want %v", tc.name, seqs, err, tc.want)
		}
	}
	// Nothing of a refused call was stored.
	page, err := s.Query(ctx, query.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 0 {
		t.Errorf("refused calls stored %d records", len(page.Records))
	}
	for _, q := range []query.Query{{Limit: -1}, {Limit: query.MaxLimit + 1}, {Outcome: "maybe"}, {Action: "Bad"},
		{Since: Base, Until: Base.Add(-1)}, {EventSince: Base, EventUntil: Base.Add(-1)}} {
		if _, err := s.Query(ctx, q); !errors.Is(err, query.ErrBadParam) {
			t.Errorf("Query(%+v) = %v, want ErrBadParam", q, err)
		}
	}
	// The store still works.
	if seqs := mustAppend(t, s, Full(1)); seqs[0] == 0 {
		t.Error("seq 0 after refused calls")
	}
}

func testDiscards(t *testing.T, s backends.Store, c *Clock) {
	seqs := mustAppend(t, s, Full(1), Full(2))
	if seqs[0] == 0 || seqs[1] <= seqs[0] {
		t.Errorf("seqs %v are not increasing from 1", seqs)
	}
	if _, err := s.Get(ctx, seqs[0]); !errors.Is(err, backends.ErrNotFound) {
		t.Errorf("Get of a discarded record = %v, want ErrNotFound", err)
	}
	page, err := s.Query(ctx, query.Query{})
	if err != nil || len(page.Records) != 0 {
		t.Errorf("Query of a discarding store = %d records, %v", len(page.Records), err)
	}
}

func testClosed(t *testing.T, s backends.Store, c *Clock) {
	if err := s.Err(); err != nil {
		t.Fatalf("Err of an open store = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := s.Err(); !errors.Is(err, backends.ErrClosed) {
		t.Errorf("Err after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Append(ctx, Full(1)); !errors.Is(err, backends.ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
}

// KeyRing returns a keyring with Key() active.
func KeyRing() *chain.Keyring { return chain.NewKeyring(Key()) }
