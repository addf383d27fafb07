// Package metrics exposes Vellum's operational state as Prometheus series
// (every name starts with vellum_; labels take only bounded values: outcome
// statuses, route patterns, rejection reasons, redaction rule names,
// configured replica names). It is the engine's Observer for commit, seal,
// checkpoint, open and failure events, the server's counter of requests and
// ingest rejections, the disk monitor's gauges, and at scrape time the
// reader of the store's state and of pluggable sources: replicas
// (WatchReplica) and spill queues (WatchSpill).
//
//	m := metrics.New(nil)
//	e, err := engine.Open(dir, &engine.Options{Keys: keys, Observer: m})
//	m.WatchStore(e)
//	http.Handle("/metrics", m.Handler())
//
// A Metrics is safe for concurrent use. Every series is documented in
// docs/metrics.md.
package metrics
