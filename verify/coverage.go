package verify

import (
	"fmt"
	"strings"
)

// coverageState collects, while the checks run, what they could not cover.
type coverageState struct {
	sealed, roots, sections int
	noRoot, noSection       []string
}

// coverage writes Report.Checks: for every check, what it covered and
// what it could not, and why. It runs last, when every count is known.
func (v *dirVerifier) coverage(results []*segResult) {
	rep := v.rep
	v.missingAtEnd()
	add := func(check, what string, checked bool, scope string, gaps []string) {
		c := Coverage{Check: check, What: what, Scope: scope, Why: strings.Join(gaps, "; ")}
		switch {
		case len(gaps) == 0:
			c.Status = StatusChecked
		case checked:
			c.Status = StatusPartly
		default:
			c.Status, c.Scope = StatusNotChecked, ""
		}
		rep.Checks = append(rep.Checks, c)
	}
	n := len(results)

	add(CheckFrame, "segment framing and CRCs", true,
		fmt.Sprintf("%s, %s: every header, block, commit frame, footer and record encoding", plural(n, "segment"), humanBytes(rep.Bytes)), nil)
	add(CheckLink, "links between segments", true, plural(n, "segment"), nil)

	// The HMAC chain.
	if v.o.Keys == nil {
		add(CheckMAC, "HMAC chain", false, "", []string{"no HMAC key given (--key): integrity against the key holder is not checked"})
	} else {
		var checked uint64
		var gaps []string
		for _, r := range results {
			checked += r.macChecked
			if r.macWhy != "" {
				gaps = append(gaps, fmt.Sprintf("%s (%s): %s", r.name, plural(int(r.count), "record"), r.macWhy))
			}
		}
		gaps = append(gaps, v.recordGaps()...)
		add(CheckMAC, "HMAC chain", checked > 0, plural(int(checked), "record"), gaps)
	}

	// Segment Merkle roots and sections.
	cov := &v.cov
	var gaps []string
	if len(cov.noRoot) > 0 {
		gaps = append(gaps, "root and section of "+strings.Join(cov.noRoot, ", "))
	}
	if len(cov.noSection) > 0 {
		gaps = append(gaps, fmt.Sprintf("section of %s: the log-wide tree is unknown from seq %d (%s)", names(cov.noSection), v.treeFrom, v.treeWhy))
	}
	scope := fmt.Sprintf("%d of %d sealed segments' roots, %s", cov.roots, cov.sealed, plural(cov.sections, "section"))
	if cov.sealed == 0 {
		scope = "no sealed segment (an active segment gets its root when sealed)"
	}
	add(CheckMerkle, "segment Merkle roots and sections", cov.roots > 0, scope, gaps)

	// Span summaries.
	var sums int
	gaps = nil
	for _, r := range results {
		switch {
		case r.summaryChecked:
			sums++
		case r.sealed && r.footer == nil:
			gaps = append(gaps, r.name+" (its footer does not verify)")
		case r.sealed && r.summaryWhy != "":
			gaps = append(gaps, r.name+" ("+r.summaryWhy+")")
		}
	}
	scope = plural(sums, "sealed segment")
	if cov.sealed == 0 {
		scope = "no sealed segment"
	}
	add(CheckSummary, "span summaries against the records", sums > 0, scope, gaps)

	// Postings.
	var posts int
	gaps = nil
	for _, r := range results {
		switch {
		case r.postingsChecked:
			posts++
		case r.sealed && r.footer == nil:
			gaps = append(gaps, r.name+" (its footer does not verify)")
		case r.sealed && r.postingsWhy != "":
			gaps = append(gaps, r.name+" ("+r.postingsWhy+")")
		}
	}
	scope = plural(posts, "sealed segment")
	if cov.sealed == 0 {
		scope = "no sealed segment"
	}
	add(CheckPostings, "postings against the records", posts > 0, scope, gaps)

	// Checkpoints.
	logWhy := v.cpLog
	if logWhy == "" && len(v.cps) == 0 {
		logWhy = "the checkpoint log is empty"
	}
	switch {
	case v.o.Verifier == nil:
		add(CheckSignature, "checkpoint signatures", false, "", []string{"no public key given (--pubkey): who signed the checkpoints is not checked"})
	case logWhy != "" && v.trusted == nil:
		add(CheckSignature, "checkpoint signatures", false, "", []string{logWhy})
	default:
		s := plural(len(v.cps), "checkpoint")
		if len(v.o.Trusted) > 0 {
			s += " and the trusted checkpoint"
		}
		add(CheckSignature, "checkpoint signatures", true, s, nil)
	}
	// Checkpoints not checked are grouped by why.
	var checked int
	var largest uint64
	var whys []string
	byWhy := map[string][]string{}
	for _, o := range v.cpChecked {
		if o.trusted {
			continue
		}
		if o.checked {
			checked++
			largest = max(largest, o.size)
			continue
		}
		if _, ok := byWhy[o.why]; !ok {
			whys = append(whys, o.why)
		}
		at := fmt.Sprintf("offset %d", o.offset)
		if o.size != ^uint64(0) {
			at = fmt.Sprintf("size %d at offset %d", o.size, o.offset)
		}
		byWhy[o.why] = append(byWhy[o.why], at)
	}
	gaps = nil
	for _, w := range whys {
		gaps = append(gaps, fmt.Sprintf("%s: %s", plural(len(byWhy[w]), "checkpoint"), w)+" ["+strings.Join(byWhy[w], ", ")+"]")
	}
	if logWhy != "" {
		gaps = append(gaps, logWhy)
	}
	gaps = append(gaps, v.cpDamaged...)
	scope = plural(checked, "checkpoint")
	if checked > 0 {
		scope += fmt.Sprintf(", the largest of %d records", largest)
	}
	var newest uint64
	for _, e := range v.cps {
		if e.ok {
			newest = max(newest, e.s.Size)
		}
	}
	if len(v.cps) > 0 && v.dataSize > newest && v.endWhy == "" {
		scope += fmt.Sprintf("; seq %d..%d are newer than every checkpoint: only the HMAC chain protects them", newest+1, v.dataSize)
	}
	add(CheckCheckpoint, "checkpoints against the data", checked > 0, scope, gaps)
	ok := 0
	for _, e := range v.cps {
		if e.ok {
			ok++
		}
	}
	if ok >= 2 {
		add(CheckConsistency, "checkpoints against each other", true, plural(ok, "checkpoint")+" in log order", nil)
	} else {
		add(CheckConsistency, "checkpoints against each other", false, "", []string{fmt.Sprintf("%s: nothing to compare", plural(ok, "readable checkpoint"))})
	}
	if len(v.o.Trusted) > 0 {
		var o *cpOutcome
		for i := range v.cpChecked {
			if v.cpChecked[i].trusted {
				o = &v.cpChecked[i]
			}
		}
		switch {
		case o == nil:
			add(CheckTrusted, "the trusted checkpoint", false, "", []string{"its signature does not verify"})
		case o.checked:
			add(CheckTrusted, "the trusted checkpoint", true, fmt.Sprintf("size %d against the data and the checkpoint log", o.size), nil)
		default:
			add(CheckTrusted, "the trusted checkpoint", false, "", []string{o.why})
		}
	}
}

// recordGaps lists the records the files hold that could not be read.
func (v *dirVerifier) recordGaps() []string {
	var gaps []string
	for _, d := range v.rep.Damage {
		if d.State != StateUnreadable {
			continue // damaged records were read; missing ones are in no file
		}
		what := fmt.Sprintf("seq %d..%d (%s)", d.FirstSeq, d.LastSeq, plural(int(d.Records), "record"))
		if d.LastSeq == 0 {
			what = fmt.Sprintf("the records from seq %d on", d.FirstSeq)
		}
		gaps = append(gaps, what+": "+d.State)
	}
	return gaps
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// names lists segment file names, shortened to a range when long.
func names(ns []string) string {
	if len(ns) <= 2 {
		return strings.Join(ns, " and ")
	}
	return fmt.Sprintf("%d segments, %s to %s", len(ns), ns[0], ns[len(ns)-1])
}
