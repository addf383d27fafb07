package vellum

import "github.com/go-json-experiment/json/jsontext"

// validJSON reports whether b is one well-formed JSON value (RFC 8259) with
// optional surrounding white space, exactly as encoding/json.Valid does:
// duplicate object names and invalid UTF-8 inside strings are allowed
// (tool arguments are stored byte for byte, as sent) and nesting is bounded
// at 10,000 levels. It is the same scanner the server's ingest decoder
// reads events with (github.com/go-json-experiment/json/jsontext, the
// prototype of encoding/json/v2): one JSON syntax in the project, not two.
// Tool arguments are validated on every append, so this is on the hot
// path; BenchmarkValidJSON measures it against encoding/json and
// FuzzValidJSON holds it to json.Valid.
func validJSON(b []byte) bool {
	return jsontext.Value(b).IsValid(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
}
