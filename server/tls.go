package server

// TLS without a proxy: the server's certificate and key (read again on
// ReloadTLS, which `vellum serve` calls on SIGHUP), and optional client
// certificates that authenticate principals bound to a certificate subject
// (auth.tokens[].cert_subject).
//
// Only FIPS-approved TLS 1.2 suites are offered (ECDHE with AES-GCM); TLS
// 1.3's suites are not configurable in Go, and under GODEBUG=fips140=only
// Go itself allows only the approved ones (AES-GCM) and approved curves.

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
)

// fipsSuites are the TLS 1.2 cipher suites offered: ECDHE key agreement
// with AES-GCM, all FIPS 140-3 approved.
var fipsSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
}

// tlsState holds the current certificate and client CAs; Reload swaps
// them. Safe for concurrent use.
type tlsState struct {
	cfg TLSConfig
	log *slog.Logger

	mu   sync.RWMutex
	cert *tls.Certificate
	cas  *x509.CertPool
}

func newTLSState(cfg *TLSConfig, log *slog.Logger) (*tlsState, error) {
	t := &tlsState{cfg: *cfg, log: log}
	if err := t.load(); err != nil {
		return nil, err
	}
	return t, nil
}

// load reads the certificate, key and client CAs; on error it changes
// nothing.
func (t *tlsState) load() error {
	cert, err := tls.LoadX509KeyPair(t.cfg.CertFile, t.cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("%w: tls.cert_file %s / tls.key_file %s: %v", ErrConfig, t.cfg.CertFile, t.cfg.KeyFile, err)
	}
	var cas *x509.CertPool
	if t.cfg.ClientCAFile != "" {
		b, err := os.ReadFile(t.cfg.ClientCAFile)
		if err != nil {
			return fmt.Errorf("%w: tls.client_ca_file: %v", ErrConfig, err)
		}
		cas = x509.NewCertPool()
		if !cas.AppendCertsFromPEM(b) {
			return fmt.Errorf("%w: tls.client_ca_file %s: no PEM certificate in it", ErrConfig, t.cfg.ClientCAFile)
		}
	}
	t.mu.Lock()
	t.cert, t.cas = &cert, cas
	t.mu.Unlock()
	return nil
}

// CheckTLSFiles loads the files cfg names (when TLS is on), so that a
// command can refuse a bad certificate before it writes anything.
func CheckTLSFiles(cfg *TLSConfig) error {
	if !cfg.Enabled() {
		return nil
	}
	_, err := newTLSState(cfg, nil)
	return err
}

func (t *tlsState) config() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: fipsSuites,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			t.mu.RLock()
			defer t.mu.RUnlock()
			c := &tls.Config{
				MinVersion:   tls.VersionTLS12,
				CipherSuites: fipsSuites,
				Certificates: []tls.Certificate{*t.cert},
				NextProtos:   []string{"h2", "http/1.1"},
			}
			if t.cas != nil {
				// A client may still use a bearer token instead.
				c.ClientAuth = tls.VerifyClientCertIfGiven
				c.ClientCAs = t.cas
			}
			return c, nil
		},
	}
}

func (t *tlsState) listener(l net.Listener) net.Listener {
	return tls.NewListener(l, t.config())
}

// ReloadTLS reads tls.cert_file, tls.key_file and tls.client_ca_file
// again; new connections use them, connections already open keep theirs.
// On error the server keeps the previous ones and the error says why. A
// server without TLS returns nil.
func (s *Server) ReloadTLS() error {
	t := s.ops.tls
	if t == nil {
		return nil
	}
	if err := t.load(); err != nil {
		s.log.Error("TLS reload failed; keeping the previous certificate", "err", err.Error())
		return err
	}
	leaf := t.cert.Leaf
	attrs := []any{"cert_file", t.cfg.CertFile}
	if leaf != nil {
		attrs = append(attrs, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter)
	}
	s.log.Info("TLS certificate reloaded", attrs...)
	return nil
}

// certAuth maps certificate subjects to principals.
type certAuth map[string]Principal

func newCertAuth(tokens []TokenConfig) certAuth {
	c := certAuth{}
	for _, t := range tokens {
		if t.CertSubject != "" {
			c[t.CertSubject] = Principal{Name: t.Name, Role: t.Role, Tenants: append([]string(nil), t.Tenants...)}
		}
	}
	return c
}

// authenticate returns the request's principal: by its bearer token when
// it sends an Authorization header, otherwise by its verified client
// certificate's subject.
func (s *Server) authenticate(r *http.Request) (Principal, error) {
	if len(r.Header.Values("Authorization")) == 0 && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		subject := r.TLS.VerifiedChains[0][0].Subject.String()
		p, ok := s.ops.certs[subject]
		if !ok {
			return Principal{}, fmt.Errorf("%w: the client certificate's subject %q is not bound to a principal (auth.tokens[].cert_subject); send a bearer token instead", ErrUnauthenticated, subject)
		}
		stateOf(r).authMode = "mtls"
		return p, nil
	}
	return s.auth.Load().Authenticate(r)
}

// authModeOr returns how the request's principal authenticated, or def.
func (st *reqState) authModeOr(def string) string {
	if st.authMode != "" {
		return st.authMode
	}
	return def
}
