package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/backends/postgres"
	"github.com/vellumlog/vellum/backends/sqlite"
	"github.com/vellumlog/vellum/chain"
)

// sqlReport is what `vellum verify --dsn/--sqlite` prints.
type sqlReport struct {
	Intact   bool                    `json:"intact"`
	Database string                  `json:"database"`
	Writers  []postgres.WriterReport `json:"writers"`
	// Bad names the first row that does not verify.
	Bad *backends.BadRowError `json:"bad,omitempty"`
}

// runVerifySQL walks every chain of a SQL database: exit 0 when intact, 1
// naming the first bad row (writer, seq), 2 on usage or connection errors.
func runVerifySQL(dsn, path, keyFile string, asJSON, otherFlags bool, stdout, stderr io.Writer) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "vellum verify: "+format+"\n", a...)
		return 2
	}
	switch {
	case dsn != "" && path != "":
		return fail("give one of --dsn and --sqlite")
	case otherFlags:
		return fail("--dsn and --sqlite take only --key and --json")
	case keyFile == "":
		return fail("--dsn and --sqlite need --key: the rows' MACs are checked with the HMAC key")
	}
	k, err := chain.LoadKeyFile(keyFile)
	if err != nil {
		return fail("%v", err)
	}
	keys := chain.NewKeyring(k)
	ctx := context.Background()
	rep := sqlReport{}
	if dsn != "" {
		rep.Database = "postgres " + postgres.Redact(dsn)
		rep.Writers, err = postgres.Verify(ctx, dsn, keys)
	} else {
		rep.Database = "sqlite " + path
		var r sqlite.Report
		r, err = sqlite.Verify(ctx, path, keys)
		rep.Writers = []postgres.WriterReport{{Writer: "", Kind: "sqlite", Rows: r.Rows, Checked: r.Checked,
			Summaries: r.Summaries, FirstSeq: r.FirstSeq, LastSeq: r.LastSeq}}
	}
	var bad *backends.BadRowError
	if err != nil && !errors.As(err, &bad) {
		return fail("%v", err)
	}
	rep.Bad, rep.Intact = bad, bad == nil
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		fmt.Fprintf(stdout, "database %s\n", rep.Database)
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "WRITER\tKIND\tROWS\tMAC CHECKED\tSUMMARIES\tSEQS")
		for _, w := range rep.Writers {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d..%d\n", w.Writer, w.Kind, w.Rows, w.Checked, w.Summaries, w.FirstSeq, w.LastSeq)
		}
		tw.Flush()
		if bad != nil {
			fmt.Fprintf(stdout, "TAMPERED: writer %q seq %d: %s\n", bad.Writer, bad.Seq, bad.Reason)
		} else {
			fmt.Fprintln(stdout, "intact: every chain links, every full row's MAC verifies (summary rows: links only; check them against the segments)")
		}
	}
	if bad != nil {
		return 1
	}
	return 0
}
