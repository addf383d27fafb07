package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/query"
)

// queryParamHelp is the flag help of each query parameter.
var queryParamHelp = map[string]string{
	"since":       "receipt time from (inclusive), RFC 3339",
	"until":       "receipt time until (exclusive), RFC 3339",
	"event_since": "event time (the producer's time) from (inclusive), RFC 3339",
	"event_until": "event time until (exclusive), RFC 3339",
	"tenant_id":   "tenant",
	"user_id":     "user",
	"session_id":  "session",
	"trace_id":    "trace",
	"action":      "action, or a prefix ending in a dot (approval.)",
	"tool":        "tool name",
	"outcome":     "success, failure, denied, approved, pending or blocked",
	"model":       "model name",
	"order":       "asc or desc",
	"limit":       "page size (1..1000)",
	"cursor":      "next_cursor of a previous page",
}

// runQuery asks a running server, so that the read is authorized and itself
// recorded as an audit.query record like any other.
func runQuery(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("query", stderr)
	srv, token := clientFlags(fl)
	asJSON := fl.Bool("json", false, "print JSON lines instead of a table")
	all := fl.Bool("all", false, "follow next_cursor through every page (the log as it stood at the first page)")
	count := fl.Bool("count", false, "print how many records match (GET /v1/audit/count) instead of the records")
	params := map[string]*string{}
	for _, name := range query.Params {
		params[name] = fl.String(name, "", queryParamHelp[name])
	}
	if code, ok := parse(fl, args); !ok {
		return code
	}
	c, err := newClient(*srv, *token)
	if err != nil {
		fmt.Fprintf(stderr, "vellum query: %v\n", err)
		return 2
	}
	v := url.Values{}
	for name, p := range params {
		if *p != "" {
			v.Set(name, *p)
		}
	}
	if *count {
		return runCount(c, v, *asJSON, stdout, stderr)
	}
	var tw *tabwriter.Writer
	for first := true; ; first = false {
		var page listPage
		if err := c.callJSON("GET", "/v1/audit?"+v.Encode(), &page); err != nil {
			fmt.Fprintf(stderr, "vellum query: %v\n", err)
			return 1
		}
		// The header only once the first page has arrived: an error
		// prints no empty table.
		if first && !*asJSON {
			tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tTIME (UTC)\tTENANT\tUSER\tACTION\tTOOL\tMODEL\tOUTCOME")
			defer tw.Flush()
		}
		for _, raw := range page.Records {
			if *asJSON {
				stdout.Write(append(raw, '\n'))
				continue
			}
			var r vellum.Record
			if err := json.Unmarshal(raw, &r); err != nil {
				fmt.Fprintf(stderr, "vellum query: bad record in response: %v\n", err)
				return 1
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Time.Format("2006-01-02T15:04:05.000000"),
				r.TenantID, r.UserID, r.Action, r.Tool.Name, r.Model.Name, r.Outcome.Status)
		}
		if !*all || page.NextCursor == "" {
			if page.NextCursor != "" {
				if tw != nil {
					tw.Flush()
				}
				fmt.Fprintf(stderr, "more: --cursor %s (or --all)\n", page.NextCursor)
			}
			return 0
		}
		v.Set("cursor", page.NextCursor)
	}
}

type listPage struct {
	Records    []json.RawMessage `json:"records"`
	NextCursor string            `json:"next_cursor"`
}

// runCount prints how many records match the filters in v.
func runCount(c *apiClient, v url.Values, asJSON bool, stdout, stderr io.Writer) int {
	var res struct {
		Count uint64 `json:"count"`
	}
	if err := c.callJSON("GET", "/v1/audit/count?"+v.Encode(), &res); err != nil {
		fmt.Fprintf(stderr, "vellum query: %v\n", err)
		return 1
	}
	if asJSON {
		fmt.Fprintf(stdout, "{\"count\":%d}\n", res.Count)
	} else {
		fmt.Fprintln(stdout, res.Count)
	}
	return 0
}
