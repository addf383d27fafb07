package collector

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"unicode/utf8"

	"github.com/vellumlog/vellum"
)

// The gateway's identity headers.
const (
	HeaderAuthSubject = "X-Auth-Subject"
	HeaderTenant      = "X-Tenant"
)

// Gateway is trusted-gateway mode for an agent server that embeds the
// collector: the user and tenant of a request are taken from the
// gateway's X-Auth-Subject and X-Tenant headers only when the request
// comes from one of Networks. From anywhere else the headers are ignored,
// and their presence is logged once (never their values). The zero value
// (or nil) trusts no one. Safe for concurrent use.
type Gateway struct {
	networks []netip.Prefix
	log      *slog.Logger
	warned   atomic.Bool
}

// NewGateway trusts the source networks cidrs (e.g. "10.0.0.0/8",
// "192.0.2.7/32"); logger (nil: discard) gets the once-only warning.
func NewGateway(cidrs []string, logger *slog.Logger) (*Gateway, error) {
	g := &Gateway{log: logger}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	for i, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("%w: gateway network %d: %q is not a CIDR network such as 10.0.0.0/8", ErrOptions, i, c)
		}
		g.networks = append(g.networks, p.Masked())
	}
	return g, nil
}

// Request returns base with the gateway's user and tenant (and AuthMode
// "gateway") when req comes from a trusted network and carries them;
// otherwise base unchanged. A header sent twice, longer than
// vellum.MaxIDLen or not UTF-8 is an error.
func (g *Gateway) Request(req *http.Request, base Request) (Request, error) {
	subj, ten := req.Header.Values(HeaderAuthSubject), req.Header.Values(HeaderTenant)
	if len(subj) == 0 && len(ten) == 0 {
		return base, nil
	}
	if !g.trusted(req.RemoteAddr) {
		if g != nil && g.warned.CompareAndSwap(false, true) {
			g.log.Warn("ignoring X-Auth-Subject/X-Tenant from a source that is not a trusted gateway; logged once")
		}
		return base, nil
	}
	for _, h := range []struct {
		name string
		vals []string
		dst  *string
	}{{HeaderAuthSubject, subj, &base.UserID}, {HeaderTenant, ten, &base.TenantID}} {
		switch {
		case len(h.vals) > 1:
			return base, fmt.Errorf("collector: %s is sent more than once", h.name)
		case len(h.vals) == 1 && (len(h.vals[0]) > vellum.MaxIDLen || !utf8.ValidString(h.vals[0])):
			return base, fmt.Errorf("collector: %s is longer than %d bytes or not UTF-8", h.name, vellum.MaxIDLen)
		case len(h.vals) == 1:
			*h.dst = h.vals[0]
		}
	}
	base.AuthMode = "gateway"
	return base, nil
}

func (g *Gateway) trusted(remote string) bool {
	if g == nil || len(g.networks) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, n := range g.networks {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}
