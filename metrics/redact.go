package metrics

import (
	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/engine"
)

// CountRedactions wraps r so that every rule that fires is counted in
// vellum_redactions_total{rule} (and the record in
// vellum_redacted_records_total). Counting happens when the engine redacts
// a record before encoding it, so a record the engine then refuses (too
// large, invalid) is counted too. A nil r stays nil.
func (m *Metrics) CountRedactions(r engine.Redactor) engine.Redactor {
	if r == nil {
		return nil
	}
	return countingRedactor{r: r, m: m}
}

type countingRedactor struct {
	r engine.Redactor
	m *Metrics
}

func (c countingRedactor) Redact(rec *vellum.Record) {
	before := len(rec.Redactions)
	c.r.Redact(rec)
	fired := rec.Redactions[min(before, len(rec.Redactions)):]
	if len(fired) == 0 {
		return
	}
	c.m.redacted.Inc()
	for _, x := range fired {
		c.m.redactions.WithLabelValues(x.Rule).Add(float64(x.Count))
	}
}
