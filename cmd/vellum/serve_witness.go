package main

import (
	"log/slog"
	"time"

	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/server"
	"github.com/vellumlog/vellum/witness"
)

// newPusher makes the witness pusher from audit.witness, or returns nil
// when no witness is configured (a nil *witness.Pusher ignores Notify and
// Close).
func newPusher(cfg *server.ServerConfig, log *slog.Logger) (*witness.Pusher, error) {
	wc := cfg.Audit.Witness
	if len(wc.Witnesses) == 0 {
		return nil, nil
	}
	keys, err := wc.Verifiers()
	if err != nil {
		return nil, err
	}
	targets := make([]witness.Target, len(keys))
	for i, k := range keys {
		targets[i] = witness.Target{URL: wc.Witnesses[i].URL, Key: k}
	}
	return witness.NewPusher(cfg.DataDir, &witness.PusherOptions{Targets: targets, Quorum: wc.Quorum, Logger: log,
		RetryMax: time.Duration(wc.RetryMax)})
}

// startPusher starts pushing with the store's latest checkpoint, and
// tells the log which origin the witnesses must watch.
func startPusher(p *witness.Pusher, eng *engine.Engine, log *slog.Logger) {
	if p == nil {
		return
	}
	if cp, ok := eng.LatestCheckpoint(); ok {
		p.Start(eng, &cp)
	} else {
		p.Start(eng, nil)
	}
	log.Info("pushing checkpoints to witnesses (each must watch this origin with this store's signing.pub)",
		slog.String("origin", eng.Origin()), slog.Int("witnesses", len(p.WitnessStatus())), slog.Int("quorum", p.Quorum()))
}

// witnessed is p as the server's interface, nil when there is no pusher.
func witnessed(p *witness.Pusher) server.Witnessed {
	if p == nil {
		return nil
	}
	return p
}
