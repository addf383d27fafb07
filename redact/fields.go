package redact

import (
	"fmt"
	"slices"
	"strings"
)

// A field path names a string in a record with dots: "outcome.reason",
// "attributes.<key>", "tool.arguments.<key>.<key>...". Arrays in tool
// arguments are transparent: every element of "items" is at
// "tool.arguments.items", so {"items":[{"email":"x"}]} reports
// "tool.arguments.items.email". A whole top-level string argument is at
// "tool.arguments".
//
// A pattern covers a path when its segments equal the path's leading
// segments, "*" matching any one segment: "model" covers
// "model.finish_reason", "tool.arguments.*.id" covers
// "tool.arguments.user.id". Keys are compared as written, and a key that
// itself contains a dot spans several segments.

// fieldPattern is a parsed path pattern: its segments.
type fieldPattern []string

// knownRoots are the first segments a field path may have, with the second
// segments allowed below them (nil: no second segment, "*": any).
var knownRoots = map[string][]string{
	"event_id": nil, "tenant_id": nil, "user_id": nil, "service": nil, "auth_mode": nil,
	"action": nil, "agent": nil, "session_id": nil, "trace_id": nil, "request_id": nil,
	"tool":       {"name", "call_id", "arguments"},
	"model":      {"name", "provider", "finish_reason"},
	"outcome":    {"status", "reason", "rule_id", "approver", "mode"},
	"attributes": {"*"},
}

// parseField checks p against the record schema so that a typo is an error
// at startup rather than a field silently redacted.
func parseField(p string) (fieldPattern, error) {
	if p == "" {
		return nil, fmt.Errorf("%w: empty path", ErrBadField)
	}
	segs := strings.Split(p, ".")
	for _, s := range segs {
		if s == "" {
			return nil, fmt.Errorf("%w: %q has an empty segment", ErrBadField, p)
		}
	}
	below, ok := knownRoots[segs[0]]
	if !ok {
		return nil, fmt.Errorf("%w: %q: %q is not a record field", ErrBadField, p, segs[0])
	}
	if len(segs) > 1 {
		switch {
		case below == nil:
			return nil, fmt.Errorf("%w: %q: %s has no fields below it", ErrBadField, p, segs[0])
		case below[0] == "*":
		case !slices.Contains(below, segs[1]) && segs[1] != "*":
			return nil, fmt.Errorf("%w: %q: %s has no field %q (want one of %s)", ErrBadField, p, segs[0], segs[1], strings.Join(below, ", "))
		case segs[1] != "arguments" && len(segs) > 2:
			return nil, fmt.Errorf("%w: %q: %s.%s has no fields below it", ErrBadField, p, segs[0], segs[1])
		}
	}
	return segs, nil
}

// covers reports whether p covers path.
func (p fieldPattern) covers(path []byte) bool { return coversPath(p, path) }

func coversPath[T string | []byte](p fieldPattern, path T) bool {
	rest := path
	for i, seg := range p {
		if i > 0 {
			if len(rest) == 0 || rest[0] != '.' {
				return false
			}
			rest = rest[1:]
		}
		end := 0
		for end < len(rest) && rest[end] != '.' {
			end++
		}
		if seg != "*" && string(rest[:end]) != seg {
			return false
		}
		rest = rest[end:]
	}
	return len(rest) == 0 || rest[0] == '.'
}

// under reports whether p can cover any path below root (a path without
// wildcards such as "tool.arguments" or "attributes").
func (p fieldPattern) under(root string) bool {
	r := strings.Split(root, ".")
	for i := 0; i < len(p) && i < len(r); i++ {
		if p[i] != "*" && p[i] != r[i] {
			return false
		}
	}
	return true
}

// neverSet is the compiled never-redact list.
type neverSet []fieldPattern

func (n neverSet) covers(path []byte) bool {
	for _, p := range n {
		if p.covers(path) {
			return true
		}
	}
	return false
}

func (n neverSet) coversString(path string) bool {
	for _, p := range n {
		if coversPath(p, path) {
			return true
		}
	}
	return false
}

// anyUnder reports whether some pattern can cover a path below root.
func (n neverSet) anyUnder(root string) bool {
	for _, p := range n {
		if p.under(root) {
			return true
		}
	}
	return false
}
