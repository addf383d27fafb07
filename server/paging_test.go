package server

import (
	"net/url"
	"slices"
	"testing"
)

// TestPagingLimitOneEnds is the regression test for paging that never
// ended: with limit=1 and a tenant filter, each page appends an
// audit.query record of that tenant, which used to become the next page.
// The cursor pins the first page's high-water seq, so the pages return
// exactly the records that existed then, and stop.
func TestPagingLimitOneEnds(t *testing.T) {
	for _, order := range []string{"asc", "desc"} {
		t.Run(order, func(t *testing.T) {
			e := newTestServer(t, nil, nil)
			want := e.ingest(ingestToken, event("tenant_id", "acme"), event("tenant_id", "acme"), event("tenant_id", "acme"))
			var got []uint64
			cursor := ""
			for pages := 0; ; pages++ {
				if pages > 10 {
					t.Fatalf("paging with limit=1 did not end after %d pages; got %v", pages, got)
				}
				raw := "tenant_id=acme&limit=1&order=" + order
				if cursor != "" {
					raw += "&cursor=" + url.QueryEscape(cursor)
				}
				res := e.list(adminToken, raw)
				got = append(got, seqsOf(res.Records)...)
				if res.NextCursor == "" {
					break
				}
				cursor = res.NextCursor
			}
			if order == "desc" {
				slices.Reverse(got)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("pages returned %v, want exactly the records before the first page %v", got, want)
			}
		})
	}
}

// TestCursorVersion1Refused: a cursor from before the high-water seq is
// refused with a reason that says what to do.
func TestCursorVersion1RefusedHTTP(t *testing.T) {
	e := newTestServer(t, nil, nil)
	status, body, _ := e.do("GET", "/v1/audit?cursor=AQAAypo7AAAAAAcAAAAAAAAASbZRHxox8iJwm4eMWLd6QG0-q4UkNUntXSYXyqfAe_I", adminToken, nil)
	if d := detail(t, body); status != 400 || d != "parameter cursor: version 1, made by an older server whose cursors did not bound paging; start again without a cursor" {
		t.Fatalf("%d %s", status, d)
	}
}
