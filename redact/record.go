package redact

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/vellumlog/vellum"
)

// RedactString redacts s as the value of field (a field path such as
// "outcome.reason" or "export.note": any name the caller uses to report
// where). It returns s itself, not a copy, and no redactions when nothing
// matched or field is on the never-redact list; otherwise the rewritten text
// and one entry per rule that fired, sorted by rule, never the value.
func (r *Redactor) RedactString(field, s string) (string, []vellum.Redaction) {
	if r.never.coversString(field) {
		return s, nil
	}
	sc := r.get()
	defer r.put(sc)
	out, changed := r.text(sc, s, secretKeyName(lastSegment(field)))
	if !changed {
		return s, nil
	}
	r.tally(sc, field)
	reds := slices.Clone(sc.tally)
	slices.SortFunc(reds, cmpRedaction)
	return out, reds
}

// Redact rewrites, in place, every producer-supplied string of rec that is
// not on the never-redact list: tool arguments (JSON, recursively: keys,
// string values and numbers), attribute keys and values, outcome.reason,
// model.finish_reason and any identity field taken off the list with
// RedactAnyway. It appends to rec.Redactions one entry per field and rule
// that fired, with how often, and keeps that list sorted by field then rule
// (an entry for the same field and rule is added to, not repeated).
//
// Arguments that are not valid JSON are redacted as plain text. Arguments in
// which nothing matched keep their exact bytes; rewritten arguments are the
// original bytes with only the changed strings replaced, so they stay valid
// JSON with the same key order and spacing.
//
// Call Redact before the record is validated, encoded, chained or written.
func (r *Redactor) Redact(rec *vellum.Record) {
	sc := r.get()
	defer r.put(sc)
	ptrs := [...]*string{
		&rec.EventID, &rec.TenantID, &rec.UserID, &rec.Service, &rec.AuthMode, &rec.Action,
		&rec.Agent, &rec.SessionID, &rec.TraceID, &rec.RequestID,
		&rec.Tool.Name, &rec.Tool.CallID, &rec.Model.Name, &rec.Model.Provider, &rec.Model.FinishReason,
		&rec.Outcome.Status, &rec.Outcome.Reason, &rec.Outcome.RuleID, &rec.Outcome.Approver, &rec.Outcome.Mode,
	}
	for i, p := range ptrs {
		if !r.scanTop[i] || *p == "" {
			continue
		}
		if out, changed := r.text(sc, *p, false); changed {
			*p = out
			r.tally(sc, topFieldsArr[i])
		}
	}
	if len(rec.Attributes) > 0 && !r.attrOff {
		r.attributes(sc, rec.Attributes)
	}
	if len(rec.Tool.Arguments) > 0 && !r.argsOff {
		if out, changed := r.arguments(sc, rec.Tool.Arguments); changed {
			rec.Tool.Arguments = out
		}
	}
	if len(sc.tally) > 0 {
		rec.Redactions = mergeRedactions(rec.Redactions, sc.tally)
	}
}

// maxRounds bounds how often text re-scans its own output. The replace and
// pseudonym actions of built-in rules never need a second round; a custom
// rule whose pattern looks at context (\b, ^, $ at its edges) can match anew
// once a neighbour became a token, and the four characters the mask action
// keeps can complete a number with the text after them.
const maxRounds = 8

// text finds and rewrites the matches in s, leaving all the matches of all
// rounds in sc.matches (for tally; their offsets are not used again).
func (r *Redactor) text(sc *scratch, s string, secretCtx bool) (string, bool) {
	r.find(sc, s, secretCtx)
	if len(sc.matches) == 0 {
		return s, false
	}
	out := r.apply(sc, s)
	if !sc.needsRescan(r) {
		return out, true
	}
	all := append(sc.rounds[:0], sc.matches...)
	for range maxRounds - 1 {
		r.find(sc, out, secretCtx)
		if len(sc.matches) == 0 {
			break
		}
		all = append(all, sc.matches...)
		out = r.apply(sc, out)
	}
	sc.rounds = all
	sc.matches = append(sc.matches[:0], all...)
	return out, true
}

// needsRescan reports whether a match in sc.matches may leave text that
// matches anew: a custom rule (whose pattern may look at context), or the
// mask action (whose kept last four characters may complete a number with
// what follows).
func (sc *scratch) needsRescan(r *Redactor) bool {
	for _, m := range sc.matches {
		if m.rule >= numBuiltins || r.rules[m.rule].action == ActionMask {
			return true
		}
	}
	return false
}

// tallyBytes is tally for a field path held in a buffer; it allocates the
// field's string only for a field not yet in sc.tally.
func (r *Redactor) tallyBytes(sc *scratch, path []byte) {
	for _, m := range sc.matches {
		name := r.rules[m.rule].name
		i := len(sc.tally) - 1
		for ; i >= 0; i-- {
			if sc.tally[i].Rule == name && sc.tally[i].Field == string(path) {
				break
			}
		}
		if i < 0 {
			sc.tally = append(sc.tally, vellum.Redaction{Rule: name, Field: string(path)})
			i = len(sc.tally) - 1
		}
		if sc.tally[i].Count < math.MaxUint32 {
			sc.tally[i].Count++
		}
	}
}

// tally adds the matches in sc.matches to sc.tally under field.
func (r *Redactor) tally(sc *scratch, field string) {
	for _, m := range sc.matches {
		name := r.rules[m.rule].name
		found := false
		for i := len(sc.tally) - 1; i >= 0 && sc.tally[i].Field == field; i-- {
			if sc.tally[i].Rule == name {
				if sc.tally[i].Count < math.MaxUint32 {
					sc.tally[i].Count++
				}
				found = true
				break
			}
		}
		if !found {
			sc.tally = append(sc.tally, vellum.Redaction{Rule: name, Field: field, Count: 1})
		}
	}
}

func cmpRedaction(a, b vellum.Redaction) int {
	if c := cmp.Compare(a.Field, b.Field); c != 0 {
		return c
	}
	return cmp.Compare(a.Rule, b.Rule)
}

// mergeRedactions adds add to have, summing the counts of equal (field,
// rule) pairs, and returns the list sorted by field then rule.
func mergeRedactions(have, add []vellum.Redaction) []vellum.Redaction {
	out := append(have, add...)
	slices.SortStableFunc(out, cmpRedaction)
	w := 0
	for _, e := range out {
		if w > 0 && out[w-1].Field == e.Field && out[w-1].Rule == e.Rule {
			sum := uint64(out[w-1].Count) + uint64(e.Count)
			out[w-1].Count = uint32(min(sum, math.MaxUint32))
			continue
		}
		out[w] = e
		w++
	}
	return out[:w]
}

// attributes redacts attribute keys and values. A key that is rewritten is
// moved to its new name; if that name is taken, "~2", "~3", ... is appended.
// Keys are handled in sorted order, so the outcome is deterministic, and the
// redactions of a moved attribute are reported under its final name.
func (r *Redactor) attributes(sc *scratch, attrs map[string]string) {
	keys := sc.keys[:0]
	for k := range attrs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	sc.keys = keys
	var renamed map[string]string // final name -> value
	for _, k := range keys {
		v := attrs[k]
		if r.attrNever {
			sc.path = append(append(sc.path[:0], "attributes."...), k...)
			if r.never.covers(sc.path) {
				continue
			}
		}
		name := k
		nk, kc := r.text(sc, k, false)
		if kc {
			name = nk
			for n := 2; ; n++ {
				_, taken := attrs[name]
				_, taken2 := renamed[name]
				if !taken && !taken2 {
					break
				}
				name = nk + "~" + strconv.Itoa(n)
			}
			r.tally(sc, "attributes."+name)
		}
		nv, vc := r.text(sc, v, secretKeyName(k))
		if vc {
			r.tally(sc, "attributes."+name)
			v = nv
		}
		if kc {
			delete(attrs, k)
			if renamed == nil {
				renamed = map[string]string{}
			}
			renamed[name] = v
		} else if vc {
			attrs[k] = v
		}
	}
	for k, v := range renamed {
		attrs[k] = v
	}
	clear(keys)
}

func lastSegment(p string) string {
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[i+1:]
	}
	return p
}
