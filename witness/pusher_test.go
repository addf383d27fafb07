package witness

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/cosign"
	"github.com/vellumlog/vellum/merkle"
	"github.com/vellumlog/vellum/vfs"
)

// testWitness is a witness behind a real HTTP server on loopback.
type testWitness struct {
	w   *Witness
	srv *httptest.Server
}

func startWitness(t *testing.T, name string, logs ...*testLog) *testWitness {
	t.Helper()
	var ls []Log
	for _, l := range logs {
		ls = append(ls, Log{Origin: l.origin, Key: l.key})
	}
	w, err := Open(t.TempDir(), &Options{Name: name, Logs: ls})
	if err != nil {
		t.Fatal(err)
	}
	tw := &testWitness{w: w, srv: httptest.NewServer(w.Handler())}
	t.Cleanup(func() { tw.srv.Close(); w.Close() })
	return tw
}

func (tw *testWitness) target() Target { return Target{URL: tw.srv.URL, Key: tw.w.Verifier()} }

func newPusher(t *testing.T, dir string, quorum int, ws ...*testWitness) *Pusher {
	t.Helper()
	var ts []Target
	for _, w := range ws {
		ts = append(ts, w.target())
	}
	p, err := NewPusher(dir, &PusherOptions{Targets: ts, Quorum: quorum, RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// eventually polls cond until it holds or 20 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting until %s", what)
}

func cosignedSize(p *Pusher) uint64 {
	s, ok := p.LatestCosigned()
	if !ok {
		return 0
	}
	return s.Size
}

func TestPusherQuorum(t *testing.T) {
	lg := newTestLog(t, 7)
	lg.grow(100, 'a')
	w1 := startWitness(t, "w1.test", lg)
	w2 := startWitness(t, "w2.test", lg)
	dir := t.TempDir()
	p := newPusher(t, dir, 2, w1, w2)
	p.Notify(lg.checkpoint(10), nil) // before Start: kept as the latest
	p.Start(lg, nil)
	eventually(t, "both witnesses cosign size 10", func() bool { return cosignedSize(p) == 10 })
	p.Notify(lg.checkpoint(30), nil)
	p.Notify(lg.checkpoint(70), nil) // coalesced: 30 may never be pushed
	eventually(t, "both witnesses cosign size 70", func() bool { return cosignedSize(p) == 70 })

	msg, err := os.ReadFile(filepath.Join(dir, cosign.CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	c, err := cosign.Open(msg, lg.key, cosign.Verifiers([]*cosign.Verifier{w1.w.Verifier(), w2.w.Verifier()}), 2)
	if err != nil || c.Size != 70 {
		t.Fatalf("saved cosigned checkpoint: %v (size %d)", err, c.Size)
	}
	for _, s := range p.WitnessStatus() {
		if s.State != StateOK || s.CosignedSize != 70 {
			t.Fatalf("status %+v", s)
		}
	}
	if len(p.Alarms()) != 0 {
		t.Fatal(p.Alarms())
	}

	// A restarted pusher reads the file: it serves it at once and pushes
	// the next checkpoint with old size 70.
	p.Close()
	p2 := newPusher(t, dir, 2, w1, w2)
	if cosignedSize(p2) != 70 {
		t.Fatal("a restarted pusher does not serve the saved cosigned checkpoint")
	}
	p2.Start(lg, nil)
	p2.Notify(lg.checkpoint(100), nil)
	eventually(t, "size 100 cosigned after the restart", func() bool { return cosignedSize(p2) == 100 })
}

func TestPusherQuorumOfTwo(t *testing.T) {
	lg := newTestLog(t, 7)
	lg.grow(20, 'a')
	w1 := startWitness(t, "w1.test", lg)
	down := startWitness(t, "down.test", lg)
	down.srv.Close()
	p := newPusher(t, t.TempDir(), 1, w1, down)
	p.Start(lg, nil)
	p.Notify(lg.checkpoint(20), nil)
	eventually(t, "one of two witnesses suffices for quorum 1", func() bool { return cosignedSize(p) == 20 })
	eventually(t, "the down witness is reported unreachable", func() bool { return p.WitnessStatus()[1].State == StateUnreachable })
	if len(p.Alarms()) != 0 {
		t.Fatalf("an unreachable witness is not a refusal: %v", p.Alarms())
	}
}

// TestPusherRefusals: a store that was rolled back, forked or rewritten,
// or that the witness does not know, is refused, and the pusher reports
// it as an alarm with the witness's conflicting checkpoint kept as
// evidence.
func TestPusherRefusals(t *testing.T) {
	lg := newTestLog(t, 7)
	lg.grow(100, 'a')
	w := startWitness(t, "w1.test", lg)
	if _, err := w.w.Add(lg.request(0, 50)); err != nil {
		t.Fatal(err)
	}
	rolledBack := lg.fork(30)
	rewritten := lg.fork(20)
	rewritten.grow(80, 'r')
	stranger := newTestLog(t, 8)
	stranger.grow(60, 'a')
	unknown := newTestLog(t, 7)
	unknown.origin = "vellum/ffffffffffffffffffffffffffffffff"
	unknown.grow(10, 'a')
	tests := []struct {
		name     string
		log      *testLog
		size     uint64
		kind     string
		evidence bool
	}{
		{"rolled back to an earlier copy", rolledBack, 30, KindRollback, true},
		{"rewritten, longer than the witnessed checkpoint", rewritten, 100, KindInconsistent, true},
		{"rewritten, the same size", rewritten, 50, KindFork, true},
		{"signed with another key", stranger, 60, KindSignature, false},
		{"an origin the witness does not watch", unknown, 10, KindUnknownLog, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := newPusher(t, dir, 1, w)
			p.Start(tt.log, nil)
			p.Notify(tt.log.checkpoint(tt.size), nil)
			eventually(t, "the refusal is reported", func() bool { return p.WitnessStatus()[0].State == StateRefused })
			st := p.WitnessStatus()[0]
			if st.Kind != tt.kind || len(p.Alarms()) != 1 || !strings.Contains(p.Alarms()[0], w.w.Verifier().ID()) {
				t.Fatalf("status %+v, alarms %v", st, p.Alarms())
			}
			if _, ok := p.LatestCosigned(); ok {
				t.Fatal("a refused checkpoint was saved as cosigned")
			}
			ev := filepath.Join(dir, cosign.ConflictPrefix+strings.Split(w.w.Verifier().ID(), "+")[1])
			if !tt.evidence {
				return
			}
			eventually(t, "the witness's checkpoint is kept", func() bool { _, err := os.Stat(ev); return err == nil })
			msg, _ := os.ReadFile(ev)
			c, err := cosign.Open(msg, lg.key, cosign.Verifiers([]*cosign.Verifier{w.w.Verifier()}), 1)
			if err != nil || c.Size < 50 {
				t.Fatalf("evidence: %v %+v", err, c)
			}
		})
	}
	// The honest log still extends.
	p := newPusher(t, t.TempDir(), 1, w)
	p.Start(lg, nil)
	p.Notify(lg.checkpoint(100), nil)
	eventually(t, "the honest log is cosigned", func() bool { return cosignedSize(p) == 100 })
	if n := len(w.w.Alarms()); n < 4 {
		t.Fatalf("the witness recorded %d alarms", n)
	}
	_ = checkpoint.ErrMalformed
	_ = vfs.Default
}

// noProver fails every proof: the pusher must use the proof Notify handed it.
type noProver struct{}

func (noProver) ConsistencyProof(context.Context, uint64, uint64) (*merkle.ConsistencyProof, error) {
	return nil, errors.New("no proofs here")
}

func TestPusherUsesHandedProof(t *testing.T) {
	lg := newTestLog(t, 7)
	lg.grow(70, 'a')
	w := startWitness(t, "w1.test", lg)
	if _, err := w.w.Add(lg.request(0, 30)); err != nil {
		t.Fatal(err)
	}
	p := newPusher(t, t.TempDir(), 1, w)
	p.Start(noProver{}, nil)
	proof, err := merkle.ProveConsistency(lg, 30, 70)
	if err != nil {
		t.Fatal(err)
	}
	p.Notify(lg.checkpoint(70), proof)
	eventually(t, "size 70 cosigned with the handed proof", func() bool { return cosignedSize(p) == 70 })
}
