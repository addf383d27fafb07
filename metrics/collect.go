package metrics

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vellumlog/vellum/engine"
)

// factory registers collectors named vellum_<name>.
type factory struct{ reg *prometheus.Registry }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(g)
	return g
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

// The series read at scrape time.
var (
	descSegments    = desc("segments", "Segment files of the store, by state (sealed or active).", "state")
	descActiveBytes = desc("active_segment_bytes", "Durable size of the active segment file.")
	descLastSeq     = desc("last_seq", "Seq of the last durable record (0 when the store is empty).")
	descStored      = desc("stored_records", "Records the store holds.")
	descFailed      = desc("store_failed", "1 while the engine has failed closed and accepts no records (the reason is in /readyz and the log).")
	descCPSize      = desc("checkpoint_tree_size", "Records covered by the latest signed checkpoint (0 before the first).")
	descCPAge       = desc("checkpoint_age_seconds", "Seconds since this process last signed a checkpoint (absent before the first).")
	descLagRecords  = desc("replica_lag_records", "Durable records a replica has not applied yet.", "replica")
	descLagSeconds  = desc("replica_lag_seconds", "Age of the oldest record a replica has not applied yet (0 when caught up).", "replica")
	descSpillEvents = desc("spill_events", "Events waiting in a spill queue while the store cannot take them.", "spill")
	descSpillBytes  = desc("spill_bytes", "Bytes waiting in a spill queue.", "spill")
)

// stateCollector reads the store and the pluggable sources at scrape time.
type stateCollector struct{ m *Metrics }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSegments, descActiveBytes, descLastSeq, descStored, descFailed, descCPSize, descCPAge, descLagRecords, descLagSeconds, descSpillEvents, descSpillBytes} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	m.mu.Lock()
	store := m.store
	replicas := make(map[string]ReplicaLagFunc, len(m.replicas))
	for k, v := range m.replicas {
		replicas[k] = v
	}
	spills := make(map[string]SpillDepthFunc, len(m.spills))
	for k, v := range m.spills {
		spills[k] = v
	}
	m.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if store != nil {
		st := store.Stats()
		gauge(descSegments, float64(st.SealedSegments), "sealed")
		gauge(descActiveBytes, float64(st.ActiveBytes))
		gauge(descSegments, float64(st.ActiveSegments), "active")
		gauge(descLastSeq, float64(st.LastSeq))
		stored := uint64(0)
		if st.LastSeq >= st.FirstSeq {
			stored = st.LastSeq - st.FirstSeq + 1
		}
		gauge(descStored, float64(stored))
		failed := st.Err != nil && !errors.Is(st.Err, engine.ErrClosed)
		gauge(descFailed, b2f(failed))
		gauge(descCPSize, float64(st.CheckpointSize))
	}
	if t := m.lastCheckpoint.Load(); t != 0 {
		gauge(descCPAge, m.now().Sub(time.Unix(0, t)).Seconds())
	}
	for name, lag := range replicas {
		n, secs := lag()
		gauge(descLagRecords, float64(n), name)
		gauge(descLagSeconds, secs, name)
	}
	for name, depth := range spills {
		n, b := depth()
		gauge(descSpillEvents, float64(n), name)
		gauge(descSpillBytes, float64(b), name)
	}
}
