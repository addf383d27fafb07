package server

import (
	"fmt"
	"slices"
	"time"

	"github.com/vellumlog/vellum/engine"
)

// validate checks audit.retention (docs/retention.md) before anything is
// created on disk: periods at or above the floor unless allowed below it,
// tenant periods that only lengthen max_age, a purge interval, and a store
// that purges.
func (r *RetentionConfig) validate(store string) error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrConfig, key, fmt.Sprintf(format, args...))
	}
	if r.Floor < 0 {
		return bad("audit.retention.floor", "%s is negative", r.Floor)
	}
	if r.PurgeEvery < Duration(time.Second) {
		return bad("audit.retention.purge_every", "%s is below the minimum of 1s", r.PurgeEvery)
	}
	below := func(key string, d Duration) error {
		if d < r.Floor && !r.AllowBelowFloor {
			return bad(key, "%s is below the retention floor audit.retention.floor %s (FedRAMP AU-11 asks for at least 90 days online; HIPAA documentation six years); lengthen it, or set audit.retention.allow_below_floor: true to accept a shorter period", d, r.Floor)
		}
		return nil
	}
	if r.MaxAge > 0 {
		if err := below("audit.retention.max_age", r.MaxAge); err != nil {
			return err
		}
	}
	tenants := make([]string, 0, len(r.Tenants))
	for t := range r.Tenants {
		tenants = append(tenants, t)
	}
	slices.Sort(tenants)
	for _, t := range tenants {
		key, d := "audit.retention.tenants."+t, r.Tenants[t]
		switch {
		case t == "":
			return bad("audit.retention.tenants", "a tenant id is empty")
		case r.MaxAge == 0:
			return bad(key, "needs audit.retention.max_age: tenant periods lengthen it, and records of other tenants would otherwise be kept forever")
		case d < r.MaxAge:
			return bad(key, "%s is shorter than audit.retention.max_age %s; a tenant's period may only lengthen retention (a segment's records are purged together)", d, r.MaxAge)
		}
		if err := below(key, d); err != nil {
			return err
		}
	}
	switch {
	case r.MaxAge > 0 && store != StoreSegment && store != StoreSQLite && store != StorePostgres:
		return bad("audit.retention.max_age", "audit.store %s keeps nothing to purge; remove it", store)
	case r.MaxAge > 0 && store != StoreSegment && len(r.LegalHolds) > 0:
		return bad("audit.retention.legal_holds", "audit.store %s expires by one time horizon for every tenant, so tenant holds cannot be kept; use audit.store segment, or remove audit.retention.max_age while the hold lasts", store)
	}
	return nil
}

// EngineRetention is the engine's retention policy from the config.
func (r *RetentionConfig) EngineRetention() engine.Retention {
	p := engine.Retention{MaxAge: time.Duration(r.MaxAge), PurgeEvery: time.Duration(r.PurgeEvery), HoldTenants: r.LegalHolds}
	if len(r.Tenants) > 0 {
		p.Tenants = map[string]time.Duration{}
		for t, d := range r.Tenants {
			p.Tenants[t] = time.Duration(d)
		}
	}
	return p
}
