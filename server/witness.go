package server

import (
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/witness"
)

// Witnessed is what the API shows of the witnesses a store pushes its
// checkpoints to (*witness.Pusher implements it): the newest checkpoint a
// quorum of them cosigned, served beside the signed one in GET /v1/audit,
// and each witness's state, with a refusal as an alarm in GET /readyz.
type Witnessed interface {
	LatestCosigned() (checkpoint.Signed, bool)
	WitnessStatus() []witness.Status
	Alarms() []string
}

var _ Witnessed = (*witness.Pusher)(nil)

// cosignedCheckpoint is the latest cosigned checkpoint for responses: its
// note carries the store's signature and the witnesses' cosignatures.
func (s *Server) cosignedCheckpoint() *checkpointJSON {
	if s.witness == nil {
		return nil
	}
	cp, ok := s.witness.LatestCosigned()
	if !ok {
		return nil
	}
	return &checkpointJSON{Origin: cp.Origin, TreeSize: cp.Size, RootHash: cp.Root, Note: string(cp.Note)}
}
