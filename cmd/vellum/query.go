package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vellumlog/vellum"
)

// runQuery asks a running server, so that the read is authorized and itself
// recorded as an audit.query record like any other.
func runQuery(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("query", stderr)
	srv := fl.String("server", "http://127.0.0.1:8080", "server base URL")
	token := fl.String("token", "", "bearer token (default: $VELLUM_TOKEN, then $VELLUM_ADMIN_TOKEN)")
	asJSON := fl.Bool("json", false, "print JSON lines instead of a table")
	all := fl.Bool("all", false, "follow next_cursor through every page")
	params := map[string]*string{}
	for _, p := range []struct{ name, usage string }{
		{"since", "RFC 3339 start (inclusive)"}, {"until", "RFC 3339 end (exclusive)"},
		{"tenant_id", "tenant"}, {"user_id", "user"}, {"session_id", "session"}, {"trace_id", "trace"},
		{"action", "action, or a prefix ending in a dot (approval.)"}, {"tool", "tool name"},
		{"outcome", "success, failure, denied, approved, pending or blocked"}, {"model", "model name"},
		{"order", "asc or desc"}, {"limit", "page size (1..1000)"}, {"cursor", "next_cursor of a previous page"},
	} {
		params[p.name] = fl.String(p.name, "", p.usage)
	}
	if code, ok := parse(fl, args); !ok {
		return code
	}
	if *token == "" {
		*token = os.Getenv("VELLUM_TOKEN")
	}
	if *token == "" {
		*token = os.Getenv("VELLUM_ADMIN_TOKEN")
	}
	if *token == "" {
		fmt.Fprintln(stderr, "vellum query: no token: pass --token or set VELLUM_TOKEN")
		return 2
	}
	v := url.Values{}
	for name, p := range params {
		if *p != "" {
			v.Set(name, *p)
		}
	}
	client := &http.Client{Timeout: time.Minute}
	var tw *tabwriter.Writer
	if !*asJSON {
		tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTIME (UTC)\tTENANT\tUSER\tACTION\tTOOL\tMODEL\tOUTCOME")
		defer tw.Flush()
	}
	for {
		page, err := fetchPage(client, strings.TrimRight(*srv, "/")+"/v1/audit?"+v.Encode(), *token)
		if err != nil {
			fmt.Fprintf(stderr, "vellum query: %v\n", err)
			return 1
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
			if page.NextCursor != "" && !*asJSON {
				tw.Flush()
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

func fetchPage(client *http.Client, u, token string) (*listPage, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Detail string `json:"detail"`
		}
		json.Unmarshal(body, &e)
		if e.Detail == "" {
			e.Detail = strings.TrimSpace(string(body))
		}
		return nil, fmt.Errorf("%s: %s", resp.Status, e.Detail)
	}
	var p listPage
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("bad response: %v", err)
	}
	return &p, nil
}
