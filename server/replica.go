package server

import (
	"context"
	"errors"

	"github.com/vellumlog/vellum/backends/replicate"
	"github.com/vellumlog/vellum/query"
)

// ReplicaStatus reports replication into a SQL database
// (*replicate.Replicator does); /readyz shows its lag.
type ReplicaStatus interface {
	Lag() replicate.Lag
}

// Lister answers GET /v1/audit when query.source is replica
// (*postgres.Replica and *sqlite.Replica do): the same query, cursors and
// audit.query record, over the replica's rows.
type Lister interface {
	Query(ctx context.Context, q query.Query) (query.Page, error)
}

// lister returns what GET /v1/audit reads from.
func (s *Server) lister() Lister {
	if s.cfg.Query.Source == SourceReplica {
		return s.replicaList
	}
	return s.store
}

func (s *Server) checkReplicaOptions(o *Options) error {
	s.replica, s.replicaList = o.Replica, o.ReplicaQuery
	if s.cfg.Query.Source == SourceReplica && s.replicaList == nil {
		return errors.New("server: query.source is replica, but no replica database was given (Options.ReplicaQuery)")
	}
	return nil
}
