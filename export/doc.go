// Package export writes audit records for people and their tools: JSON
// lines (one record per line, the record's JSON form as the API serves it)
// or CSV (one header row, then one row per record in the fixed columns of
// Columns). The command line (`vellum export`) and the HTTP export
// (GET /v1/audit/export) share it, so both give byte-identical output for
// the same records.
//
//	w, err := export.NewWriter(out, export.CSV)
//	for _, r := range records {
//		if err := w.Write(&r); err != nil { ... }
//	}
//	err = w.Flush()
//
// A Writer is not safe for concurrent use. Values are written as stored:
// CSV cells are not escaped for spreadsheets (a cell may start with "=");
// open the file as text, not as formulas, when that matters. The format is
// documented in docs/api.md ("Exports").
package export
