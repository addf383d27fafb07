package server

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"unicode/utf8"

	"github.com/vellumlog/vellum"
)

// Gateway identity headers: behind the ecosystem's gateway the user and
// tenant arrive in these (issue 11).
const (
	HeaderAuthSubject = "X-Auth-Subject"
	HeaderTenant      = "X-Tenant"
)

// GatewayConfig is trusted-gateway mode (trusted_gateway in the config
// file): requests from the listed principals (token names) or source
// networks (CIDRs) may set the user and tenant of what they ingest with
// X-Auth-Subject and X-Tenant. Off (both empty) by default; from anyone
// else the headers are ignored, and their presence is logged once.
type GatewayConfig struct {
	// Principals are the names of the tokens (or certificate principals)
	// the gateway calls with.
	Principals []string `yaml:"principals"`
	// Networks are the gateway's source networks, e.g. 10.0.0.0/8 or
	// 192.0.2.7/32.
	Networks []string `yaml:"networks"`
}

// Enabled reports whether any principal or network is trusted.
func (g *GatewayConfig) Enabled() bool { return len(g.Principals) > 0 || len(g.Networks) > 0 }

func (g *GatewayConfig) validate() error {
	for i, p := range g.Principals {
		if p == "" {
			return fmt.Errorf("%w: trusted_gateway.principals[%d] is empty", ErrConfig, i)
		}
		if slices.Contains(g.Principals[:i], p) {
			return fmt.Errorf("%w: trusted_gateway.principals[%d]: %q is listed twice", ErrConfig, i, p)
		}
	}
	for i, n := range g.Networks {
		if _, err := netip.ParsePrefix(n); err != nil {
			return fmt.Errorf("%w: trusted_gateway.networks[%d]: %q is not a CIDR network such as 10.0.0.0/8 or 192.0.2.7/32", ErrConfig, i, n)
		}
	}
	return nil
}

// prefixes returns the parsed networks (validated already).
func (g *GatewayConfig) prefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(g.Networks))
	for _, n := range g.Networks {
		if p, err := netip.ParsePrefix(n); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// identity is who a request's records are about: the gateway's user and
// tenant when the caller is a trusted gateway and sent them.
type identity struct {
	user, tenant string
	gateway      bool // the values come from a trusted gateway
}

// gatewayIdentity returns the gateway identity headers of r when p (or
// r's source address) is trusted. An untrusted request that carries them
// is logged once per server (never the values) and they are ignored. A
// header sent twice, too long or not UTF-8 is a 400.
func (s *Server) gatewayIdentity(r *http.Request, p Principal) (identity, error) {
	subj, ten := r.Header.Values(HeaderAuthSubject), r.Header.Values(HeaderTenant)
	if len(subj) == 0 && len(ten) == 0 {
		return identity{}, nil
	}
	if !s.trustedGateway(r, p) {
		if s.gatewayWarned.CompareAndSwap(false, true) {
			s.log.Warn("ignoring X-Auth-Subject/X-Tenant from a client that is not a trusted gateway (trusted_gateway); logged once",
				"principal", p.Name, "id", stateOf(r).id)
		}
		return identity{}, nil
	}
	id := identity{gateway: true}
	for _, h := range []struct {
		name string
		vals []string
		dst  *string
	}{{HeaderAuthSubject, subj, &id.user}, {HeaderTenant, ten, &id.tenant}} {
		switch {
		case len(h.vals) > 1:
			return identity{}, badRequest("%s is sent more than once", h.name)
		case len(h.vals) == 1 && (len(h.vals[0]) > vellum.MaxIDLen || !utf8.ValidString(h.vals[0])):
			return identity{}, badRequest("%s is longer than %d bytes or not UTF-8", h.name, vellum.MaxIDLen)
		case len(h.vals) == 1:
			*h.dst = h.vals[0]
		}
	}
	if id.tenant != "" && !p.InScope(id.tenant) {
		return identity{}, forbidden("%s names a tenant outside the tenants principal %s may write", HeaderTenant, p.Name)
	}
	return id, nil
}

// trustedGateway reports whether p or r's source address is a trusted
// gateway.
func (s *Server) trustedGateway(r *http.Request, p Principal) bool {
	if slices.Contains(s.cfg.TrustedGateway.Principals, p.Name) {
		return true
	}
	if len(s.gatewayNets) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, n := range s.gatewayNets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// applyIdentity sets the gateway's user and tenant on events that do not
// name them; an event naming another is refused, since a trusted gateway
// is the authority on who the caller is.
func applyIdentity(id identity, recs []vellum.Record) error {
	if !id.gateway {
		return nil
	}
	for i := range recs {
		r := &recs[i]
		if id.tenant != "" {
			if r.TenantID != "" && r.TenantID != id.tenant {
				return badRequest("events[%d]: tenant_id differs from the trusted gateway's %s", i, HeaderTenant)
			}
			r.TenantID = id.tenant
		}
		if id.user != "" {
			if r.UserID != "" && r.UserID != id.user {
				return badRequest("events[%d]: user_id differs from the trusted gateway's %s", i, HeaderAuthSubject)
			}
			r.UserID = id.user
		}
		if r.AuthMode == "" {
			r.AuthMode = "gateway"
		}
	}
	return nil
}
