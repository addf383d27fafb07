package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/query"
)

func TestIngestThenQuery(t *testing.T) {
	e := newTestServer(t, nil, nil)
	seqs := e.ingest(ingestToken, issueEvent)
	res := e.list(adminToken, "tenant_id=acme")
	if len(res.Records) != 1 || res.NextCursor != "" {
		t.Fatalf("records %d, next %q", len(res.Records), res.NextCursor)
	}
	got := res.Records[0]
	if got.Seq != seqs[0] || got.Time.IsZero() || got.MAC.IsZero() || got.KeyID == "" {
		t.Fatalf("store-assigned fields missing: %+v", got)
	}
	if time.Since(got.Time) > time.Minute || got.Time.Location() != time.UTC {
		t.Fatalf("receipt time %v", got.Time)
	}
	if got.Attributes[ReservedAttrPrefix+"principal"] != "agent" {
		t.Fatalf("attributes %v: want the ingesting principal", got.Attributes)
	}
	want := issueRecord()
	want.Seq, want.Time, want.KeyID, want.PrevMAC, want.MAC, want.Redactions = got.Seq, got.Time, got.KeyID, got.PrevMAC, got.MAC, got.Redactions
	want.Attributes = map[string]string{"vellum.principal": "agent"}
	want.Tool.Arguments = compactJSON(want.Tool.Arguments)
	got.Tool.Arguments = compactJSON(got.Tool.Arguments)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("record differs:\n got %+v\nwant %+v", got, want)
	}

	status, body, hdr := e.do("GET", fmt.Sprintf("/v1/audit/%d", seqs[0]), auditToken, nil)
	if status != http.StatusOK || hdr.Get("Content-Type") != "application/json" || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET one: %d %v %s", status, hdr, body)
	}
	var one vellum.Record
	if err := json.Unmarshal(body, &one); err != nil || one.Seq != seqs[0] || one.MAC != res.Records[0].MAC {
		t.Fatalf("GET one: %v %+v", err, one)
	}
}

func TestIngestNDJSON(t *testing.T) {
	e := newTestServer(t, nil, nil)
	body := event("tenant_id", "acme") + "\n" + event("tenant_id", "acme") + "\n"
	for _, ct := range []string{"application/x-ndjson", "application/json", "", "application/x-www-form-urlencoded"} {
		t.Run("content type "+ct, func(t *testing.T) {
			status, b, _ := e.do("POST", "/v1/audit/events", ingestToken, []byte(body), "Content-Type", ct)
			var r struct{ Seqs []uint64 }
			if status != http.StatusOK || json.Unmarshal(b, &r) != nil || len(r.Seqs) != 2 || r.Seqs[1] != r.Seqs[0]+1 {
				t.Fatalf("%d %s", status, b)
			}
		})
	}
	t.Run("empty array", func(t *testing.T) {
		status, b, _ := e.do("POST", "/v1/audit/events", ingestToken, []byte("[]"))
		if status != http.StatusOK || strings.TrimSpace(string(b)) != `{"seqs":[]}` {
			t.Fatalf("%d %s", status, b)
		}
	})
}

// TestAuthMatrix checks who may do what on every API route.
func TestAuthMatrix(t *testing.T) {
	e := newTestServer(t, nil, nil)
	acmeSeq := e.ingest(ingestToken, event("tenant_id", "acme"))[0]
	globexSeq := e.ingest(ingestToken, event("tenant_id", "globex"))[0]
	type call struct {
		method, path string
		body         string
	}
	calls := map[string]call{
		"list":          {"GET", "/v1/audit", ""},
		"list acme":     {"GET", "/v1/audit?tenant_id=acme", ""},
		"list globex":   {"GET", "/v1/audit?tenant_id=globex", ""},
		"get acme":      {"GET", fmt.Sprintf("/v1/audit/%d", acmeSeq), ""},
		"get globex":    {"GET", fmt.Sprintf("/v1/audit/%d", globexSeq), ""},
		"ingest acme":   {"POST", "/v1/audit/events", "[" + event("tenant_id", "acme") + "]"},
		"ingest globex": {"POST", "/v1/audit/events", "[" + event("tenant_id", "globex") + "]"},
		"ingest none":   {"POST", "/v1/audit/events", "[" + event() + "]"},
	}
	const (
		ok     = http.StatusOK
		unauth = http.StatusUnauthorized
		forbid = http.StatusForbidden
	)
	tests := []struct {
		who   string
		token string
		want  map[string]int
	}{
		{"no token", "", map[string]int{"list": unauth, "list acme": unauth, "list globex": unauth, "get acme": unauth, "get globex": unauth, "ingest acme": unauth, "ingest globex": unauth, "ingest none": unauth}},
		{"unknown token", "not-a-token-of-anyone", map[string]int{"list": unauth, "list acme": unauth, "list globex": unauth, "get acme": unauth, "get globex": unauth, "ingest acme": unauth, "ingest globex": unauth, "ingest none": unauth}},
		{"admin", adminToken, map[string]int{"list": ok, "list acme": ok, "list globex": ok, "get acme": ok, "get globex": ok, "ingest acme": ok, "ingest globex": ok, "ingest none": ok}},
		{"auditor", auditToken, map[string]int{"list": ok, "list acme": ok, "list globex": ok, "get acme": ok, "get globex": ok, "ingest acme": forbid, "ingest globex": forbid, "ingest none": forbid}},
		{"acme auditor", acmeToken, map[string]int{"list": ok, "list acme": ok, "list globex": forbid, "get acme": ok, "get globex": forbid, "ingest acme": forbid, "ingest globex": forbid, "ingest none": forbid}},
		{"ingest", ingestToken, map[string]int{"list": forbid, "list acme": forbid, "list globex": forbid, "get acme": forbid, "get globex": forbid, "ingest acme": ok, "ingest globex": ok, "ingest none": ok}},
		{"acme ingest", acmeIngest, map[string]int{"list": forbid, "list acme": forbid, "list globex": forbid, "get acme": forbid, "get globex": forbid, "ingest acme": ok, "ingest globex": forbid, "ingest none": forbid}},
	}
	for _, tt := range tests {
		for name, c := range calls {
			t.Run(tt.who+"/"+name, func(t *testing.T) {
				var body []byte
				if c.body != "" {
					body = []byte(c.body)
				}
				status, b, hdr := e.do(c.method, c.path, tt.token, body)
				if status != tt.want[name] {
					t.Fatalf("%s %s as %s: %d, want %d: %s", c.method, c.path, tt.who, status, tt.want[name], b)
				}
				if status != ok {
					detail(t, b)
				}
				if status == unauth && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("401 without WWW-Authenticate: Bearer: %v", hdr)
				}
			})
		}
	}
	t.Run("scoped auditor sees only its tenants", func(t *testing.T) {
		for _, r := range e.list(acmeToken, "limit=1000").Records {
			if r.TenantID != "acme" {
				t.Fatalf("acme auditor got a record of tenant %q", r.TenantID)
			}
		}
	})
	t.Run("unknown token detail", func(t *testing.T) {
		_, b, hdr := e.do("GET", "/v1/audit", "not-a-token-of-anyone", nil)
		if d := detail(t, b); d != "unknown token" || !strings.Contains(hdr.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Fatalf("detail %q, header %q", d, hdr.Get("WWW-Authenticate"))
		}
	})
}

// TestAuditQueryRecorded checks that every read appends an audit.query
// record, visible by the time the answer arrives, naming the principal,
// the filters and the result count, and never the token.
func TestAuditQueryRecorded(t *testing.T) {
	e := newTestServer(t, nil, nil)
	e.ingest(ingestToken, event("tenant_id", "acme", "user_id", "alice"), event("tenant_id", "acme"), event("tenant_id", "globex"))

	findLast := func(t *testing.T) vellum.Record {
		t.Helper()
		// Reading the audit.query records is itself a read, appended
		// after this answer: the newest in the answer is the one before.
		res := e.list(adminToken, "action=audit.query&order=desc&limit=1")
		if len(res.Records) != 1 {
			t.Fatal("no audit.query record")
		}
		return res.Records[0]
	}
	t.Run("list", func(t *testing.T) {
		e.list(acmeToken, "tenant_id=acme&user_id=alice&order=desc&limit=5")
		r := findLast(t)
		want := map[string]string{
			"route": "GET /v1/audit", "role": "auditor", "query.tenant_id": "acme", "query.user_id": "alice",
			"query.order": "desc", "query.limit": "5", "query.scope": "acme", "result_count": "1",
		}
		if r.Action != ActionAuditQuery || r.UserID != "acme-auditor" || r.AuthMode != "bearer" || r.TenantID != "acme" ||
			r.Outcome.Status != vellum.StatusSuccess || r.RequestID == "" || !reflect.DeepEqual(r.Attributes, want) {
			t.Fatalf("audit record %+v\nattributes %v", r, r.Attributes)
		}
	})
	t.Run("paged list", func(t *testing.T) {
		res := e.list(adminToken, "limit=1")
		e.list(adminToken, "limit=1&cursor="+res.NextCursor)
		r := findLast(t)
		if r.Attributes["query.cursor"] != "true" || strings.Contains(fmt.Sprint(r.Attributes), res.NextCursor) {
			t.Fatalf("attributes %v", r.Attributes)
		}
	})
	t.Run("get and get missing", func(t *testing.T) {
		e.do("GET", "/v1/audit/1", adminToken, nil)
		r := findLast(t)
		if r.UserID != "ops" || r.Attributes["query.seq"] != "1" || r.Attributes["result_count"] != "1" || r.TenantID != "acme" {
			t.Fatalf("audit record %+v", r)
		}
		status, b, _ := e.do("GET", "/v1/audit/999999", adminToken, nil)
		if status != http.StatusNotFound || !strings.Contains(detail(t, b), "999999") {
			t.Fatalf("missing: %d %s", status, b)
		}
		r = findLast(t)
		if r.Attributes["query.seq"] != "999999" || r.Attributes["result_count"] != "0" {
			t.Fatalf("audit record of a miss %+v", r)
		}
	})
	t.Run("denied read", func(t *testing.T) {
		status, _, _ := e.do("GET", "/v1/audit?tenant_id=globex", acmeToken, nil)
		if status != http.StatusForbidden {
			t.Fatal(status)
		}
		r := findLast(t)
		if r.Outcome.Status != vellum.StatusDenied || r.TenantID != "globex" || r.UserID != "acme-auditor" || r.Attributes["query.scope"] != "acme" {
			t.Fatalf("audit record of a denial %+v", r)
		}
	})
	t.Run("no token in any record", func(t *testing.T) {
		b, _ := json.Marshal(e.list(adminToken, "limit=1000").Records)
		for _, s := range []string{adminToken, acmeToken, ingestToken, HashToken(adminToken)} {
			if strings.Contains(string(b), s) {
				t.Fatalf("a record contains %q", s)
			}
		}
	})
}

// TestPagingWhileIngesting pages through 10,000 records in both orders
// while appends continue, both between pages and concurrently: no gap and
// no duplicate. Ascending paging must also pick up every record appended
// while it ran.
// TestPagingWhileIngesting pages through a log that grows under the
// pages, in both orders: every record that existed at the first page comes
// exactly once, in order, without gaps, and nothing appended after the
// first page comes at all.
func TestPagingWhileIngesting(t *testing.T) {
	initial, batch, extra := 10_000, 500, 1000
	if testing.Short() || raceEnabled {
		initial, extra = 2500, 250
	}
	e := newTestServer(t, nil, nil)
	events := func(n int) []string {
		evs := make([]string, n)
		for i := range evs {
			evs[i] = event("tenant_id", "acme")
		}
		return evs
	}
	var want []uint64
	for range initial / batch {
		want = append(want, e.ingest(ingestToken, events(batch)...)...)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < extra/10; i++ {
			select {
			case <-stop:
				return
			default:
			}
			e.ingest(ingestToken, events(10)...)
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	const limit = 199
	for _, order := range []string{"asc", "desc"} {
		t.Run(order, func(t *testing.T) {
			var got, between []uint64
			cursor := ""
			for pages := 0; ; pages++ {
				if pages > 2*(initial+extra)/limit+10 {
					t.Fatal("paging does not end")
				}
				raw := fmt.Sprintf("action=tool.call&limit=%d&order=%s", limit, order)
				if cursor != "" {
					raw += "&cursor=" + url.QueryEscape(cursor)
				}
				res := e.list(adminToken, raw)
				got = append(got, seqsOf(res.Records)...)
				if res.NextCursor == "" {
					break
				}
				cursor = res.NextCursor
				between = append(between, e.ingest(ingestToken, events(3)...)...)
			}
			for i := 1; i < len(got); i++ {
				if order == "asc" && got[i] <= got[i-1] || order == "desc" && got[i] >= got[i-1] {
					t.Fatalf("out of order or duplicate at %d: %d then %d", i, got[i-1], got[i])
				}
			}
			have := map[uint64]bool{}
			for _, s := range got {
				have[s] = true
			}
			for _, s := range want {
				if !have[s] {
					t.Fatalf("seq %d missing from the pages", s)
				}
			}
			// Bounded by the first page: nothing appended after it, such
			// as the records added between pages, is ever returned.
			for _, s := range between {
				if have[s] {
					t.Fatalf("seq %d, appended after the first page, was returned", s)
				}
			}
			if len(between) > 0 {
				for _, s := range got {
					if s >= between[0] {
						t.Fatalf("seq %d is newer than the first page (records from %d on were appended after it)", s, between[0])
					}
				}
			}
			// No gap: every matching record up to the newest seen (asc) or
			// up to the first page's newest (desc) is in the pages.
			bound := got[len(got)-1]
			if order == "desc" {
				bound = got[0]
			}
			q := query.Query{Action: "tool.call", Limit: query.MaxLimit}
			for {
				p, err := e.store.Query(context.Background(), q)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range p.Records {
					if r.Seq <= bound && !have[r.Seq] {
						t.Fatalf("seq %d (at or below %d) missing", r.Seq, bound)
					}
				}
				if p.Next == nil {
					break
				}
				q.After = p.Next
			}
		})
	}
}

// TestFiltersNarrow compares every filter against query.Match applied to
// a snapshot of the whole log.
func TestFiltersNarrow(t *testing.T) {
	e := newTestServer(t, nil, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	var evs []string
	for range 300 {
		evs = append(evs, event(
			"tenant_id", pick("acme", "globex", "initech"),
			"user_id", pick("alice", "bob", "carol", "dave"),
			"session_id", pick("s-1", "s-2", "s-3"),
			"trace_id", pick("trace_a", "trace_b"),
			"action", pick("tool.call", "tool.result", "approval.requested", "approval.granted", "approval.denied", "model.decision"),
			"tool", pick("web_search", "shell", "calculator"),
			"model", pick("granite-3.3-8b", "llama-3"),
			"status", pick(vellum.Statuses...),
		))
	}
	for i := 0; i < len(evs); i += 50 {
		e.ingest(ingestToken, evs[i:i+50]...)
	}
	snapshot := e.list(adminToken, "limit=1000").Records
	if len(snapshot) != 300 {
		t.Fatalf("snapshot has %d records", len(snapshot))
	}
	mid := snapshot[150].Time
	cutoff := snapshot[len(snapshot)-1].Time.Add(1) // excludes the audit.query records that follow
	tests := []struct {
		name string
		q    query.Query
	}{
		{"no filter", query.Query{}},
		{"tenant", query.Query{TenantID: "acme"}},
		{"user", query.Query{UserID: "bob"}},
		{"session", query.Query{SessionID: "s-2"}},
		{"trace", query.Query{TraceID: "trace_b"}},
		{"action exact", query.Query{Action: "approval.granted"}},
		{"action prefix", query.Query{Action: "approval."}},
		{"action prefix matches nothing", query.Query{Action: "guardrail."}},
		{"tool", query.Query{Tool: "shell"}},
		{"outcome", query.Query{Outcome: "denied"}},
		{"model", query.Query{Model: "llama-3"}},
		{"since", query.Query{Since: mid}},
		{"until", query.Query{Until: mid}},
		{"since and until", query.Query{Since: snapshot[100].Time, Until: snapshot[200].Time}},
		{"combined", query.Query{TenantID: "acme", Action: "tool.", Outcome: "success", Since: snapshot[30].Time}},
		{"combined desc", query.Query{TenantID: "globex", UserID: "alice", Desc: true}},
		{"limit", query.Query{TenantID: "initech", Limit: 7}},
		{"limit desc", query.Query{Tool: "calculator", Limit: 7, Desc: true}},
		{"unknown tenant", query.Query{TenantID: "nobody"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := tt.q
			if q.Until.IsZero() {
				q.Until = cutoff
			}
			if q.Limit == 0 {
				q.Limit = 1000
			}
			if err := q.Normalize(); err != nil {
				t.Fatal(err)
			}
			var want []uint64
			for i := range snapshot {
				j := i
				if q.Desc {
					j = len(snapshot) - 1 - i
				}
				if q.Match(&snapshot[j]) && len(want) < q.Limit {
					want = append(want, snapshot[j].Seq)
				}
			}
			got := seqsOf(e.list(adminToken, q.Values().Encode()).Records)
			if !slices.Equal(got, want) {
				t.Fatalf("%s:\n got %s\nwant %s", q.Values().Encode(), fmtSeqs(got), fmtSeqs(want))
			}
			if tt.name != "no filter" && tt.name != "unknown tenant" && len(want) == len(snapshot) {
				t.Fatal("the filter does not narrow anything; the test proves nothing")
			}
		})
	}
}

func TestIdempotentRetry(t *testing.T) {
	e := newTestServer(t, nil, nil)
	ev := event("tenant_id", "acme", "event_id", "e-42")
	first := e.ingest(ingestToken, ev)
	again := e.ingest(ingestToken, ev)
	if first[0] != again[0] {
		t.Fatalf("retry stored again: seqs %d and %d", first[0], again[0])
	}
	other := e.ingest(ingestToken, event("tenant_id", "globex", "event_id", "e-42"))
	if other[0] == first[0] {
		t.Fatal("the same event_id in another tenant was taken for a retry")
	}
	if n := len(e.list(adminToken, "tenant_id=acme&limit=1000").Records); n != 1 {
		t.Fatalf("%d records of acme, want 1", n)
	}
}

// TestValidation sends bad requests: each gets a 4xx whose detail says
// what is wrong, and nothing else is lost.
func TestValidation(t *testing.T) {
	e := newTestServer(t, nil, func(c *ServerConfig) {
		c.BodyLimit = 4 << 10
		c.MaxEvents = 3
		c.Audit.MaxRecordSize = 1 << 10
	})
	good := e.ingest(ingestToken, event("tenant_id", "acme"), event("tenant_id", "acme"))
	cursor := e.list(adminToken, "tenant_id=acme&limit=1").NextCursor
	forged := []byte(cursor)
	if forged[10] == 'A' { // another base64url character: decodes, but does not verify
		forged[10] = 'B'
	} else {
		forged[10] = 'A'
	}

	tests := []struct {
		name   string
		method string
		path   string
		body   string
		status int
		want   []string // substrings of the detail
	}{
		{"bad time", "GET", "/v1/audit?since=yesterday", "", 400, []string{"parameter since", "RFC 3339"}},
		{"until before since", "GET", "/v1/audit?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "", 400, []string{"parameter until"}},
		{"limit over max", "GET", "/v1/audit?limit=5000", "", 400, []string{"parameter limit", "at most 1000"}},
		{"limit zero", "GET", "/v1/audit?limit=0", "", 400, []string{"parameter limit"}},
		{"unknown parameter", "GET", "/v1/audit?tenant=acme", "", 400, []string{"parameter tenant", "unknown parameter"}},
		{"repeated parameter", "GET", "/v1/audit?order=asc&order=desc", "", 400, []string{"parameter order", "2 times"}},
		{"bad outcome", "GET", "/v1/audit?outcome=maybe", "", 400, []string{"parameter outcome"}},
		{"bad order", "GET", "/v1/audit?order=up", "", 400, []string{"parameter order"}},
		{"malformed query string", "GET", "/v1/audit?tenant_id=%zz", "", 400, []string{"query string is malformed"}},
		{"forged cursor", "GET", "/v1/audit?tenant_id=acme&limit=1&cursor=" + string(forged), "", 400, []string{"parameter cursor", "does not verify"}},
		{"garbage cursor", "GET", "/v1/audit?cursor=hello", "", 400, []string{"parameter cursor", "malformed"}},
		{"cursor with other filters", "GET", "/v1/audit?tenant_id=globex&limit=1&cursor=" + cursor, "", 400, []string{"parameter cursor", "other filters"}},
		{"cursor with other order", "GET", "/v1/audit?tenant_id=acme&order=desc&cursor=" + cursor, "", 400, []string{"parameter cursor", "order=asc"}},
		{"bad seq", "GET", "/v1/audit/abc", "", 400, []string{"parameter seq"}},
		{"seq zero", "GET", "/v1/audit/0", "", 400, []string{"parameter seq"}},
		{"seq overflow", "GET", "/v1/audit/99999999999999999999", "", 400, []string{"parameter seq"}},
		{"seq with sign", "GET", "/v1/audit/+1", "", 400, []string{"parameter seq"}},
		{"malformed JSON", "POST", "/v1/audit/events", `[{"action": "tool.call",]`, 400, []string{"events[0]", "malformed JSON"}},
		{"unknown field", "POST", "/v1/audit/events", `[` + event() + `,{"action":"a","outcome":{"status":"success"},"colour":"red"}]`, 400, []string{"events[1]", "colour", "unknown field"}},
		{"store-assigned field", "POST", "/v1/audit/events", `[{"action":"a","outcome":{"status":"success"},"seq":7}]`, 400, []string{"events[0]", "seq", "assigned by the store"}},
		{"invalid event", "POST", "/v1/audit/events", `[{"action":"a","outcome":{"status":"great"}}]`, 400, []string{"events[0]", "outcome.status"}},
		{"empty body", "POST", "/v1/audit/events", ` `, 400, []string{"empty"}},
		{"oversized body", "POST", "/v1/audit/events", `[` + event("user_id", strings.Repeat("u", 500)) + strings.Repeat(","+event("user_id", strings.Repeat("u", 500)), 9) + `]`, 413, []string{"larger than the limit of 4KiB"}},
		{"too many events", "POST", "/v1/audit/events", `[` + strings.Repeat(event()+",", 3) + event() + `]`, 413, []string{"events[3]", "more than 3 events"}},
		{"event too large", "POST", "/v1/audit/events", `[{"action":"a","outcome":{"status":"success"},"attributes":{"k":"` + strings.Repeat("x", 1500) + `"}}]`, 413, []string{"events[0]", "over the maximum of 1024"}},
		{"unknown route", "GET", "/v2/audit", "", 404, []string{"no route GET /v2/audit"}},
		{"wrong method", "DELETE", "/v1/audit", "", 405, []string{"DELETE is not allowed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			token := adminToken
			status, b, _ := e.do(tt.method, tt.path, token, body)
			if status != tt.status {
				t.Fatalf("%d, want %d: %s", status, tt.status, b)
			}
			d := detail(t, b)
			for _, w := range tt.want {
				if !strings.Contains(d, w) {
					t.Fatalf("detail %q does not say %q", d, w)
				}
			}
		})
	}
	t.Run("oversized chunked body", func(t *testing.T) {
		// No Content-Length: the limit is enforced while reading.
		big := "[" + strings.Repeat(event("user_id", strings.Repeat("u", 200))+",", 40) + event() + "]"
		req, _ := http.NewRequest("POST", e.base+"/v1/audit/events", io.MultiReader(strings.NewReader(big)))
		req.Header.Set("Authorization", "Bearer "+ingestToken)
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if req.ContentLength != 0 || resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(detail(t, b), "4KiB") {
			t.Fatalf("content length %d: %d %s", req.ContentLength, resp.StatusCode, b)
		}
	})
	t.Run("nothing else lost", func(t *testing.T) {
		recs := e.list(adminToken, "tenant_id=acme&action=tool.call&limit=1000").Records
		if !slices.Equal(seqsOf(recs), good) {
			t.Fatalf("acme records %v, want %v", seqsOf(recs), good)
		}
		for _, r := range e.list(adminToken, "action=tool.call&limit=1000").Records {
			if r.TenantID != "acme" {
				t.Fatalf("a rejected event was stored: %+v", r)
			}
		}
		e.ingest(ingestToken, event()) // and the server still takes good events
	})
}

func TestStoreFailed(t *testing.T) {
	store := &failedStore{Store: newTestStore(t), err: errors.New("fsync segment 3: input/output error")}
	e := newTestServer(t, store, nil)
	tests := []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/v1/audit", "", 503},
		{"GET", "/v1/audit/1", "", 503},
		{"POST", "/v1/audit/events", "[" + event() + "]", 503},
		{"GET", "/readyz", "", 503},
		{"GET", "/healthz", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			status, b, _ := e.do(tt.method, tt.path, adminToken, body)
			if status != tt.status {
				t.Fatalf("%d, want %d: %s", status, tt.status, b)
			}
			if status == 503 && strings.Contains(detail(t, b), "input/output") {
				t.Fatalf("the detail leaks the store's error: %s", b)
			}
		})
	}
	if !strings.Contains(e.logs.String(), "input/output error") {
		t.Fatal("the store's error is not logged")
	}
}

func TestHealth(t *testing.T) {
	e := newTestServer(t, nil, nil)
	for _, p := range []string{"/healthz", "/readyz"} {
		status, b, _ := e.do("GET", p, "", nil)
		if status != http.StatusOK || !strings.Contains(string(b), `"status"`) {
			t.Fatalf("%s: %d %s", p, status, b)
		}
	}
}

// TestShutdownWaitsForInFlight: an ingest in progress when Shutdown starts
// finishes and is acknowledged; Shutdown returns after it; /readyz says
// 503 meanwhile.
func TestShutdownWaitsForInFlight(t *testing.T) {
	bs := &blockingStore{Store: newTestStore(t), entered: make(chan struct{}, 1), release: make(chan struct{})}
	e := newTestServer(t, bs, nil)
	type result struct {
		status int
		body   []byte
	}
	done := make(chan result, 1)
	go func() {
		s, b, _ := e.do("POST", "/v1/audit/events", ingestToken, []byte("["+event()+"]"))
		done <- result{s, b}
	}()
	<-bs.entered
	shut := make(chan error, 1)
	go func() { shut <- e.srv.Shutdown(context.Background()) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "shutting down") {
		t.Fatalf("readyz during shutdown: %d %s", rec.Code, rec.Body)
	}
	close(bs.release)
	r := <-done
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"seqs":[1]`) {
		t.Fatalf("in-flight ingest: %d %s", r.status, r.body)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Get(e.base + "/healthz"); err == nil {
		t.Fatal("the server still accepts connections after Shutdown")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	store := newTestStore(t)
	cfg := DefaultConfig()
	cfg.LogLevel = "chatty"
	if _, err := New(cfg, store, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v", err)
	}
	cfg = DefaultConfig()
	cfg.Auth.Tokens = []TokenConfig{{Name: "a", Role: RoleAdmin, TokenEnv: "UNSET_FOR_SURE"}}
	if _, err := New(cfg, store, &Options{LookupEnv: envOf(nil)}); !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v", err)
	}
	if _, err := New(nil, nil, nil); err == nil {
		t.Fatal("nil store accepted")
	}
	if _, err := New(nil, store, nil); err != nil {
		t.Fatalf("nil config and options: %v", err)
	}
}

func TestRequestID(t *testing.T) {
	e := newTestServer(t, nil, nil)
	_, _, hdr := e.do("GET", "/healthz", "", nil, "X-Request-Id", "abc-123")
	if hdr.Get("X-Request-Id") != "abc-123" {
		t.Fatalf("request id not kept: %q", hdr.Get("X-Request-Id"))
	}
	_, _, hdr = e.do("GET", "/healthz", "", nil, "X-Request-Id", "bad id with spaces")
	if id := hdr.Get("X-Request-Id"); len(id) != 16 {
		t.Fatalf("request id not replaced: %q", id)
	}
}
