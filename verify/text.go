package verify

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteText writes the report as `vellum verify` prints it (see
// docs/auditors.md, "Reading the report"): the verdict and the first bad
// place, what the data holds, where records are damaged, unreadable or
// missing, one line per check saying what it covered ("checked"), what it
// covered and what not ("partly checked") or why it did not run ("not
// checked"), then warnings and every problem.
func (r *Report) WriteText(w io.Writer, bundle bool) {
	what := fmt.Sprintf("%s, %s (%s), %s", plural(int(r.Records), "record"), plural(r.Segments, "segment"), humanBytes(r.Bytes), plural(r.Checkpoints, "checkpoint"))
	if bundle {
		what = plural(int(r.Records), "record")
		if r.Tree != nil {
			what += fmt.Sprintf(" against a signed checkpoint of %d records", r.Tree.Size)
		}
	}
	if r.OK() {
		fmt.Fprintf(w, "INTACT: %s: %s", r.Dir, what)
	} else {
		fmt.Fprintf(w, "NOT INTACT: %s: %s; %s", r.Dir, what, plural(len(r.Problems), "problem"))
	}
	switch {
	case r.Tree != nil:
		fmt.Fprintf(w, "; tree size %d, root %s", r.Tree.Size, r.Tree.Root.Base64())
	case !bundle && r.TreeUnknown != "":
		fmt.Fprintf(w, "; no log-wide tree: %s", r.TreeUnknown)
	}
	if !r.OK() {
		fmt.Fprintf(w, ". First bad place:\n  %v\n", r.Problems[0])
	} else {
		fmt.Fprintln(w)
	}
	if !bundle {
		line := fmt.Sprintf("records: %d read", r.Records)
		if r.Records > 0 {
			line += fmt.Sprintf(" (seq %d..%d)", r.FirstSeq, r.LastSeq)
		}
		if r.Unreadable > 0 {
			line += fmt.Sprintf(", %d unreadable", r.Unreadable)
		}
		if r.Missing > 0 {
			line += fmt.Sprintf(", %d missing", r.Missing)
		}
		fmt.Fprintf(w, "  %s\n", line)
	}
	for _, p := range r.Purged {
		fmt.Fprintf(w, "  purged: segments %d-%d, seq %d..%d", p.FirstSegment, p.LastSegment, p.FirstSeq, p.LastSeq)
		if !p.FirstTime.IsZero() {
			fmt.Fprintf(w, " (%s to %s)", p.FirstTime.Format(time.RFC3339), p.LastTime.Format(time.RFC3339))
		}
		fmt.Fprintf(w, ", by retention; anchor record %s\n", p.Anchor)
	}
	for _, d := range r.Damage {
		fmt.Fprintf(w, "  %s: %s\n", d.State, d.describe())
	}
	for _, c := range r.Checks {
		switch c.Status {
		case StatusChecked:
			fmt.Fprintf(w, "  checked: %s: %s\n", c.What, c.Scope)
		case StatusPartly:
			fmt.Fprintf(w, "  partly checked: %s: %s; not checked: %s\n", c.What, c.Scope, c.Why)
		default:
			fmt.Fprintf(w, "  not checked: %s: %s\n", c.What, c.Why)
		}
	}
	for _, s := range r.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", s)
	}
	if len(r.Problems) > 1 {
		fmt.Fprintln(w, "all problems:")
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  - %v\n", p)
		}
	}
}

// describe says where a damaged range is and what is known of it.
func (d *Damage) describe() string {
	var b strings.Builder
	switch {
	case d.FirstSeq == 0:
		b.WriteString("records of unknown seq")
	case d.LastSeq == 0:
		fmt.Fprintf(&b, "the records from seq %d on", d.FirstSeq)
	default:
		fmt.Fprintf(&b, "seq %d..%d (%s)", d.FirstSeq, d.LastSeq, plural(int(d.Records), "record"))
	}
	if d.File != "" {
		fmt.Fprintf(&b, " in %s", d.File)
		if d.Offset >= 0 {
			fmt.Fprintf(&b, " offset %d", d.Offset)
		}
	}
	fmt.Fprintf(&b, ": %s", d.Detail)
	switch {
	case d.FirstBadMAC != 0 && d.BadMACs > 1:
		fmt.Fprintf(&b, "; %d fail their MAC, the first seq %d", d.BadMACs, d.FirstBadMAC)
	case d.FirstBadMAC != 0:
		fmt.Fprintf(&b, "; the record that changed is seq %d (its MAC fails)", d.FirstBadMAC)
	case d.State == StateDamaged && d.MACChecked:
		b.WriteString("; every one of their MACs verifies")
	case d.State == StateDamaged:
		b.WriteString("; without the HMAC key (--key) the changed record cannot be named")
	}
	return b.String()
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
