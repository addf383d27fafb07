package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/fips140"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testPKI is a CA and certificates made for a test (ECDSA P-256 and
// SHA-256: FIPS-approved).
type testPKI struct {
	t      *testing.T
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
	pool   *x509.CertPool
	serial int64
}

func newPKI(t *testing.T) *testPKI {
	p := &testPKI{t: t, dir: t.TempDir(), serial: 1}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vellum test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.caKey = key
	p.caFile = p.write("ca.pem", "CERTIFICATE", der)
	p.pool = x509.NewCertPool()
	p.pool.AddCert(p.ca)
	return p
}

func (p *testPKI) write(name, typ string, der []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// issue makes a certificate for subject: a server certificate for
// 127.0.0.1 when server is true, a client one otherwise. It returns the
// PEM file paths and the tls.Certificate.
func (p *testPKI) issue(name string, subject pkix.Name, server bool) (certFile, keyFile string, cert tls.Certificate) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(p.serial), Subject: subject, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		p.t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		p.t.Fatal(err)
	}
	certFile, keyFile = p.write(name+".pem", "CERTIFICATE", der), p.write(name+".key", "EC PRIVATE KEY", kder)
	cert, err = tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		p.t.Fatal(err)
	}
	return certFile, keyFile, cert
}

// approvedSuites are the FIPS 140-3 approved suites Go may negotiate.
var approvedSuites = []uint16{
	tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
}

// TestTLS serves HTTPS with certificates made here, and checks with a
// real TLS client: bearer tokens over TLS, a principal bound to a client
// certificate's subject, an unknown certificate refused, only approved
// cipher suites, and the certificate reloaded in place.
func TestTLS(t *testing.T) {
	pki := newPKI(t)
	certFile, keyFile, _ := pki.issue("server", pkix.Name{CommonName: "vellum.test"}, true)
	_, _, botCert := pki.issue("bot", pkix.Name{CommonName: "support-bot", Organization: []string{"Acme"}}, false)
	_, _, strangerCert := pki.issue("stranger", pkix.Name{CommonName: "stranger"}, false)
	store := newTestStore(t)
	e := newTestServerWith(t, store, &Options{}, func(c *ServerConfig) {
		c.TLS = TLSConfig{CertFile: certFile, KeyFile: keyFile, ClientCAFile: pki.caFile}
		c.Auth.Tokens = append(c.Auth.Tokens, TokenConfig{Name: "support-bot", Role: RoleIngest, Tenants: []string{"acme"}, CertSubject: "CN=support-bot,O=Acme"})
	})
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.pool, Certificates: certs}}}
	}
	// A bearer token over TLS, no client certificate.
	e.client = client()
	e.ingest(ingestToken, event("tenant_id", "acme"))
	resp, err := e.client.Get(e.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !slices.Contains(approvedSuites, resp.TLS.CipherSuite) {
		t.Fatalf("negotiated %s, not FIPS-approved", tls.CipherSuiteName(resp.TLS.CipherSuite))
	}
	// The bot authenticates with its certificate alone.
	e.client = client(botCert)
	seqs := e.ingest("", event("event_id", "by-cert", "tenant_id", "acme"))
	rec, err := store.Get(t.Context(), seqs[0])
	if err != nil {
		t.Fatal(err)
	}
	if rec.Attributes[ReservedAttrPrefix+"principal"] != "support-bot" {
		t.Fatalf("recorded principal %q", rec.Attributes[ReservedAttrPrefix+"principal"])
	}
	// Its scope holds: another tenant is 403.
	if status, b, _ := e.do("POST", "/v1/audit/events", "", []byte("["+event("tenant_id", "globex")+"]")); status != 403 {
		t.Fatalf("out of scope by certificate: %d %s", status, b)
	}
	// An ingest principal by certificate may not read.
	if status, _, _ := e.do("GET", "/v1/audit", "", nil); status != 403 {
		t.Fatalf("read by an ingest certificate: %d", status)
	}
	// A certificate from the CA whose subject no principal has: 401.
	e.client = client(strangerCert)
	status, b, _ := e.do("POST", "/v1/audit/events", "", []byte("["+event()+"]"))
	if status != 401 || !strings.Contains(detail(t, b), "CN=stranger") {
		t.Fatalf("unknown certificate: %d %s", status, b)
	}
	// No certificate, no token: 401.
	e.client = client()
	if status, _, _ := e.do("POST", "/v1/audit/events", "", []byte("["+event()+"]")); status != 401 {
		t.Fatalf("anonymous: %d", status)
	}
	// A certificate from another CA is refused in the handshake.
	other := newPKI(t)
	_, _, foreign := other.issue("bot", pkix.Name{CommonName: "support-bot", Organization: []string{"Acme"}}, false)
	if _, err := client(foreign).Get(e.base + "/healthz"); err == nil {
		t.Fatal("a certificate from an unknown CA was accepted")
	}
	// A client offering only a non-approved suite gets no connection.
	addr := strings.TrimPrefix(e.base, "https://")
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.pool, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}})
	if err == nil {
		conn.Close()
		t.Fatal("the server negotiated ChaCha20-Poly1305, which FIPS 140-3 does not approve")
	}
	if fips140.Enforced() {
		// Under GODEBUG=fips140=only a TLS 1.3 handshake still works,
		// with an approved suite.
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.pool})
		if err != nil {
			t.Fatalf("TLS 1.3 under fips140=only: %v", err)
		}
		if st := c.ConnectionState(); !slices.Contains(approvedSuites, st.CipherSuite) {
			t.Fatalf("fips140=only negotiated %s", tls.CipherSuiteName(st.CipherSuite))
		}
		c.Close()
	}

	// Reload: a new certificate replaces the old one for new connections.
	newCert, newKey, _ := pki.issue("server2", pkix.Name{CommonName: "vellum-renewed.test"}, true)
	for _, f := range [][2]string{{newCert, certFile}, {newKey, keyFile}} {
		b, _ := os.ReadFile(f[0])
		if err := os.WriteFile(f[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.srv.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.pool})
	if err != nil {
		t.Fatal(err)
	}
	if cn := c.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "vellum-renewed.test" {
		t.Fatalf("after reload the server presents %q", cn)
	}
	c.Close()
	// A broken file on reload keeps the working certificate.
	os.WriteFile(certFile, []byte("not a certificate"), 0o600)
	if err := e.srv.ReloadTLS(); err == nil {
		t.Fatal("a broken certificate reloaded")
	}
	if _, err := client().Get(e.base + "/healthz"); err != nil {
		t.Fatalf("after a failed reload: %v", err)
	}
	if !strings.Contains(e.logs.String(), "TLS reload failed") {
		t.Fatal("the failed reload is not logged")
	}
}

// TestPlainHTTPWarning: plain HTTP on a non-loopback address logs a
// warning at startup; on loopback it does not.
func TestPlainHTTPWarning(t *testing.T) {
	for _, tt := range []struct {
		addr string
		warn bool
	}{{"127.0.0.1:0", false}, {"0.0.0.0:0", true}} {
		logs := &syncBuffer{}
		cfg := DefaultConfig()
		cfg.Auth = testAuthConfig()
		srv, err := New(cfg, newTestStore(t), &Options{Logger: NewLogger(logs, cfg), LookupEnv: envOf(map[string]string{"ACME_INGEST": acmeIngest})})
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", tt.addr)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- srv.Serve(l) }()
		// Serve has started once the server answers.
		port := l.Addr().(*net.TCPAddr).Port
		for i := 0; i < 100; i++ {
			resp, err := http.Get("http://127.0.0.1:" + itoa(port) + "/healthz")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		srv.Shutdown(t.Context())
		<-done
		if got := strings.Contains(logs.String(), "serving plain HTTP on a non-loopback address"); got != tt.warn {
			t.Errorf("%s: warning %v, want %v:\n%s", tt.addr, got, tt.warn, logs.String())
		}
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// TestTLSConfigErrors: a missing or wrong file stops New with an error
// naming it.
func TestTLSConfigErrors(t *testing.T) {
	pki := newPKI(t)
	certFile, keyFile, _ := pki.issue("server", pkix.Name{CommonName: "x"}, true)
	for _, tt := range []struct {
		name string
		tls  TLSConfig
		want string
	}{
		{"missing cert", TLSConfig{CertFile: filepath.Join(pki.dir, "nope.pem"), KeyFile: keyFile}, "tls.cert_file"},
		{"key of another cert", TLSConfig{CertFile: certFile, KeyFile: pki.caFile}, "tls.key_file"},
		{"CA file without PEM", TLSConfig{CertFile: certFile, KeyFile: keyFile, ClientCAFile: keyFile}, "tls.client_ca_file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.TLS = tt.tls
			_, err := New(cfg, newTestStore(t), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one naming %s", err, tt.want)
			}
		})
	}
}
