package report

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/vfs"
)

// Options say what Generate reports on. Dir is required; the zero value of
// every other field works.
type Options struct {
	// Dir is the data directory (read only; no lock is taken).
	Dir string
	// Filter selects the records counted.
	Filter Filter
	// PublicKeyFile checks the latest checkpoint's signature; empty:
	// <Dir>/signing.pub when it exists.
	PublicKeyFile string
	// Retention is the retention policy and legal holds from the server's
	// configuration (Configured false: none was given).
	Retention Retention
	// Principal names who asked, printed on the page.
	Principal string
	// Now is the clock for the "generated" line; time.Now when nil.
	Now func() time.Time
	// FS is the file system; vfs.Default when nil.
	FS vfs.FS
	// Workers and Progress are passed to Aggregate.
	Workers  int
	Progress func(done, total int)
}

// Report is everything the page shows.
type Report struct {
	Summary   *Summary
	Integrity *Integrity
	Charts    []Chart
}

// Build reads the store and makes the report's content.
func Build(ctx context.Context, o *Options) (*Report, error) {
	if o.Dir == "" {
		return nil, fmt.Errorf("report: no data directory")
	}
	fs := o.FS
	if fs == nil {
		fs = vfs.Default
	}
	if _, err := fs.Stat(o.Dir); err != nil {
		return nil, fmt.Errorf("report: data directory: %w", err)
	}
	pub := o.PublicKeyFile
	if pub == "" {
		if p := filepath.Join(o.Dir, checkpoint.PublicKeyFile); fileExists(p) {
			pub = p
		}
	}
	sum, err := Aggregate(ctx, o.Dir, o.Filter, &AggregateOptions{FS: fs, Workers: o.Workers, Progress: o.Progress})
	if err != nil {
		return nil, err
	}
	in := checkIntegrity(fs, o.Dir, pub)
	in.Retention = o.Retention
	if hs, err := layout.ReadHolds(fs, o.Dir); err == nil {
		for _, h := range hs { // holds set over the API or vellum holds
			in.Retention.Holds = append(in.Retention.Holds, h.ID+" ("+holdScope(h)+"; "+h.Reason+"; set by "+h.SetBy+")")
		}
	}
	if m, err := layout.ReadPurged(fs, o.Dir); err == nil && m != nil {
		in.Retention.Purged = fmt.Sprintf("segments 1 to %d (seq 1..%d) were purged by %d anchored purges", m.Through, m.LastSeq, len(m.Purges))
	}
	cs, err := charts(sum)
	if err != nil {
		return nil, err
	}
	return &Report{Summary: sum, Integrity: in, Charts: cs}, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Write renders r as one self-contained HTML page: inline CSS and SVG, no
// scripts, fonts, stylesheets or images from anywhere.
func (r *Report) Write(w io.Writer, o *Options) error {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	in := r.Integrity
	pub := "signing.pub"
	if in.PublicKeyFile != "" {
		pub = in.PublicKeyFile
	}
	p := &page{Generated: now(), Principal: o.Principal, Dir: o.Dir, Filter: o.Filter, Summary: r.Summary, Integrity: in, Charts: r.Charts, PublicKey: pub}
	p.Commands = []string{
		"# on a copy of the data directory (cp -a " + o.Dir + " ./copy), offline:",
		"vellum verify --data ./copy --pubkey " + pub + "                 # framing, links, Merkle roots, every checkpoint's signature",
		"vellum verify --data ./copy --pubkey " + pub + " --key hmac.key  # and every record's HMAC (key holders only)",
		"vellum verify --data ./copy --pubkey " + pub + " --checkpoint cp.txt  # the data still holds what this checkpoint says",
		"vellum export --data ./copy --proof --pubkey " + pub + " --out evidence.jsonl  # records with inclusion proofs",
		"vellum verify --bundle evidence.jsonl --pubkey " + pub + "       # a bundle needs only the public key",
	}
	rt := in.Retention
	switch {
	case !rt.Configured:
		p.Retention = "not shown: no server configuration was given to the report (vellum report --config FILE)"
		p.Holds = "not shown: no server configuration was given"
	default:
		if rt.MaxAge > 0 {
			p.Retention = "configured: audit.retention.max_age " + days(rt.MaxAge)
		} else {
			p.Retention = "configured: keep everything (audit.retention.max_age 0)"
		}
		if len(rt.LegalHolds) > 0 {
			p.Holds = "configured for tenants: " + strings.Join(rt.LegalHolds, ", ")
		} else {
			p.Holds = "none configured"
		}
	}
	if !rt.Enforced {
		p.Retention += ". This store does not purge by retention: every record is kept, whatever max_age says."
		if rt.Configured && len(rt.LegalHolds) > 0 {
			p.HoldsState = "Nothing is purged, so every record of these tenants is kept."
		}
	} else if rt.Configured && rt.MaxAge > 0 {
		p.Retention += "; whole sealed segments are purged once every record in them is past its tenant's period, each purge anchored by a retention.purge record (docs/retention.md)"
	}
	if rt.Purged != "" {
		p.Retention += ". " + rt.Purged
	}
	if len(rt.Holds) > 0 {
		if p.Holds == "" || strings.HasPrefix(p.Holds, "not shown") || p.Holds == "none configured" {
			p.Holds = ""
		} else {
			p.Holds += "; "
		}
		p.Holds += "set in the data directory: " + strings.Join(rt.Holds, ", ")
	}
	return writePage(w, p)
}

// days writes d in whole days when it is a whole number of days.
func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// Generate builds the report for o and writes its HTML page to w.
func Generate(ctx context.Context, w io.Writer, o *Options) error {
	r, err := Build(ctx, o)
	if err != nil {
		return err
	}
	return r.Write(w, o)
}

// holdScope says what a legal hold covers.
func holdScope(h layout.Hold) string {
	s := "every tenant"
	if h.TenantID != "" {
		s = "tenant " + h.TenantID
	}
	if !h.Since.IsZero() {
		s += " from " + h.Since.UTC().Format(time.RFC3339)
	}
	if !h.Until.IsZero() {
		s += " until " + h.Until.UTC().Format(time.RFC3339)
	}
	return s
}
