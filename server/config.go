package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/redact"
)

// Defaults, filled in by SetDefaults wherever a field is zero.
const (
	DefaultAddr           = "127.0.0.1:8080"
	DefaultDataDir        = "./vellum-data"
	DefaultLogLevel       = "info"
	DefaultBodyLimit      = 8 << 20
	DefaultMaxEvents      = 10_000
	DefaultSegmentMaxSize = 32 << 20
	DefaultSegmentMaxAge  = Duration(time.Hour)
	// DefaultRetentionFloor is the shortest retention vellum serve accepts
	// without audit.retention.allow_below_floor: FedRAMP AU-11 keeps audit
	// records at least 90 days online.
	DefaultRetentionFloor = Duration(90 * 24 * time.Hour)
	// DefaultPurgeEvery is how often the server purges expired segments.
	DefaultPurgeEvery    = Duration(time.Hour)
	DefaultMaxRecordSize = 1 << 20
	// DefaultPreallocate is audit.preallocate when unset (PERFORMANCE.md,
	// "Soak with preallocated segments").
	DefaultPreallocate = true
	// DefaultCheckpointRecs and DefaultCheckpointAge are the engine's
	// cadence, the one the docs state: a signed checkpoint at least every
	// 10 s or 100,000 records while the log grows (and at every seal).
	DefaultCheckpointRecs = engine.DefaultCheckpointRecords
	DefaultCheckpointAge  = Duration(engine.DefaultCheckpointInterval)
	// DefaultHMACKeyName is the key file name inside the data directory
	// when neither audit.hmac_key_file nor audit.hmac_key_env is set.
	DefaultHMACKeyName = "hmac.key"
	// DefaultPseudonymKeyName is the pseudonym key file name inside the
	// data directory when audit.pseudonym_key_file is not set.
	DefaultPseudonymKeyName = "pseudonym.key"
)

// Quick-start environment variables: each, when set, adds one token with
// the role its name says (unless auth.disable_quick_start_env is true).
const (
	EnvAdminToken  = "VELLUM_ADMIN_TOKEN"
	EnvIngestToken = "VELLUM_INGEST_TOKEN"
)

// MaxMaxEvents is the largest per-request event limit a config may set.
const MaxMaxEvents = 1_000_000

// ServerConfig configures the standalone server: where it listens, where
// the store lives, who may call it, and the store's own settings. The zero
// value after SetDefaults is a working local server. Load it with
// LoadConfig; it logs without secrets (LogValue).
type ServerConfig struct {
	// Addr is the host:port to listen on.
	Addr string `yaml:"addr"`
	// DataDir is the store's directory.
	DataDir string `yaml:"data_dir"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// LogFormat is text (logfmt) or json (config_ops.go).
	LogFormat string `yaml:"log_format"`
	// AccessLog is all (every request logs its line at info) or quiet
	// (successful ingests and health checks log at debug) (config_ops.go).
	AccessLog string `yaml:"access_log"`
	// Metrics says who may scrape GET /metrics (config_ops.go).
	Metrics MetricsConfig `yaml:"metrics"`
	// TLS serves HTTPS, optionally with client certificates (config_ops.go).
	TLS TLSConfig `yaml:"tls"`
	// BodyLimit bounds a request body; larger bodies get 413.
	BodyLimit ByteSize `yaml:"body_limit"`
	// MaxEvents bounds the events in one ingest request.
	MaxEvents int `yaml:"max_events"`
	// Auth says who may call the API.
	Auth AuthConfig `yaml:"auth"`
	// Audit holds the store's settings.
	Audit AuditConfig `yaml:"audit"`
	// Query says where GET /v1/audit reads from (config_backends.go).
	Query QueryConfig `yaml:"query"`
	// TrustedGateway says whose X-Auth-Subject and X-Tenant headers set
	// the user and tenant of ingested records (gateway.go). Off by
	// default.
	TrustedGateway GatewayConfig `yaml:"trusted_gateway"`
}

// AuthConfig lists the bearer tokens the server accepts.
type AuthConfig struct {
	// Tokens are the configured principals.
	Tokens []TokenConfig `yaml:"tokens"`
	// DisableQuickStartEnv ignores VELLUM_ADMIN_TOKEN and
	// VELLUM_INGEST_TOKEN, so only Tokens are accepted.
	DisableQuickStartEnv bool `yaml:"disable_quick_start_env"`
}

// TokenConfig is one principal: a name (recorded as the user of what it
// does), a role, an optional tenant scope, and its token, either as the
// SHA-256 of the token in hex (never the token itself) or as the name of an
// environment variable that holds the token. Exactly one of TokenSHA256 and
// TokenEnv is set.
type TokenConfig struct {
	Name        string   `yaml:"name"`
	Role        Role     `yaml:"role"`
	Tenants     []string `yaml:"tenants"`
	TokenSHA256 string   `yaml:"token_sha256"`
	TokenEnv    string   `yaml:"token_env"`
	// Optional, with TokenEnv only: when the variable is unset or empty
	// the principal is left out (and the server logs that it is) instead
	// of refusing to start. Without it an unset variable is an error, so a
	// misspelled name never silently disables a principal.
	Optional bool `yaml:"optional"`
	// CertSubject authenticates the principal by its TLS client
	// certificate instead of a token: the certificate's subject as
	// RFC 2253 prints it ("CN=support-bot,O=Acme"). Needs
	// tls.client_ca_file; set instead of token_sha256 and token_env.
	CertSubject string `yaml:"cert_subject"`
}

// AuditConfig holds the settings of the store the server runs.
type AuditConfig struct {
	// SegmentMaxSize seals the active segment once it reaches this size.
	SegmentMaxSize ByteSize `yaml:"segment_max_size"`
	// SegmentMaxAge seals the active segment once it is this old.
	SegmentMaxAge Duration `yaml:"segment_max_age"`
	// MaxRecordSize bounds one encoded record.
	MaxRecordSize ByteSize `yaml:"max_record_size"`
	// HMACKeyFile is the chain key file (hex, mode 0600). When neither it
	// nor HMACKeyEnv is set the key is <data_dir>/hmac.key, generated on
	// first run.
	HMACKeyFile string `yaml:"hmac_key_file"`
	// HMACKeyEnv names an environment variable holding the chain key in
	// hex, instead of a file.
	HMACKeyEnv string `yaml:"hmac_key_env"`
	// SigningKeyFile is the Ed25519 key that signs checkpoints. Empty:
	// <data_dir>/signing.key, generated on first run (with signing.pub for
	// auditors). Checkpoints are always signed.
	SigningKeyFile string `yaml:"signing_key_file"`
	// Checkpoint says how often a Merkle checkpoint is made.
	Checkpoint CheckpointConfig `yaml:"checkpoint"`
	// Retention says how long sealed segments are kept.
	Retention RetentionConfig `yaml:"retention"`
	// Redaction says which personal data and secrets are rewritten before
	// a record is encoded (docs/redaction.md). The zero value is the
	// default preset with the replace action.
	Redaction redact.Config `yaml:"redaction"`
	// PseudonymKeyFile is the key of the pseudonym redaction action (hex,
	// mode 0600, kept apart from the chain key). Empty: the key is
	// <data_dir>/pseudonym.key, generated on first run.
	PseudonymKeyFile string `yaml:"pseudonym_key_file"`
	// Compression is the codec of new segments' blocks: s2 (default),
	// s2dict or zstd (see CompressionCodec).
	Compression string `yaml:"compression"`
	// Postings builds record-level postings (segment/FORMAT.md, section
	// 4) so that filtered queries and GET /v1/audit/count read only what
	// matches; false leaves them out (less CPU per append, smaller
	// segments, filtered queries by the time index and span summaries).
	// Unset: true.
	Postings *bool `yaml:"postings"`
	// Preallocate zero-fills the next segment's file in the background
	// while the active one fills (engine.Options.NoPreallocate,
	// segment/FORMAT.md "Preallocated files"), so that a commit's
	// fdatasync need not commit a size change. Unset: DefaultPreallocate.
	// Segment store only.
	Preallocate *bool `yaml:"preallocate"`
	// Store is the primary store: segment (the engine, default), sqlite,
	// postgres or null (config_backends.go).
	Store     string          `yaml:"store"`
	SQLite    SQLiteConfig    `yaml:"sqlite"`
	Postgres  PostgresConfig  `yaml:"postgres"`
	Replicate ReplicateConfig `yaml:"replicate"`
	// Disk sets the free-space alarms (config_ops.go).
	Disk DiskConfig `yaml:"disk"`
	// Witness lists the witnesses that cosign checkpoints (witness_config.go).
	Witness WitnessConfig `yaml:"witness"`
}

// CheckpointConfig makes a signed checkpoint after EveryRecords records or
// Every, whichever comes first, while the log grows (and one at every
// segment seal). Zero means the default (DefaultCheckpointRecs,
// DefaultCheckpointAge).
type CheckpointConfig struct {
	EveryRecords int      `yaml:"every_records"`
	Every        Duration `yaml:"every"`
}

// RetentionConfig purges whole sealed segments once every record in them
// is past its tenant's period (docs/retention.md): MaxAge (zero keeps
// everything), longer for the tenants in Tenants, every PurgeEvery, except
// segments a legal hold touches (LegalHolds by tenant here, and the holds
// set over the API). A period below Floor refuses to start unless
// AllowBelowFloor is set.
type RetentionConfig struct {
	MaxAge          Duration            `yaml:"max_age"`
	Tenants         map[string]Duration `yaml:"tenants"`
	Floor           Duration            `yaml:"floor"`
	AllowBelowFloor bool                `yaml:"allow_below_floor"`
	PurgeEvery      Duration            `yaml:"purge_every"`
	LegalHolds      []string            `yaml:"legal_holds"`
}

// DefaultConfig returns the configuration of a server started without a
// config file.
func DefaultConfig() *ServerConfig {
	c := &ServerConfig{}
	c.SetDefaults()
	return c
}

// SetDefaults fills every zero field that has a default. It is the one
// place defaults live.
func (c *ServerConfig) SetDefaults() {
	setDefault(&c.Addr, DefaultAddr)
	setDefault(&c.DataDir, DefaultDataDir)
	setDefault(&c.LogLevel, DefaultLogLevel)
	setDefault(&c.BodyLimit, DefaultBodyLimit)
	setDefault(&c.MaxEvents, DefaultMaxEvents)
	a := &c.Audit
	setDefault(&a.SegmentMaxSize, DefaultSegmentMaxSize)
	setDefault(&a.SegmentMaxAge, DefaultSegmentMaxAge)
	setDefault(&a.MaxRecordSize, DefaultMaxRecordSize)
	setDefault(&a.Checkpoint.EveryRecords, DefaultCheckpointRecs)
	setDefault(&a.Checkpoint.Every, DefaultCheckpointAge)
	setDefault(&a.Compression, DefaultCompression)
	if a.Postings == nil {
		on := true
		a.Postings = &on
	}
	setDefault(&a.Retention.Floor, DefaultRetentionFloor)
	setDefault(&a.Retention.PurgeEvery, DefaultPurgeEvery)
	c.setBackendDefaults()
	c.setOpsDefaults()
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// HMACKeyPath returns the chain key file: audit.hmac_key_file, or
// <data_dir>/hmac.key when no key source is configured, or "" when the key
// comes from audit.hmac_key_env.
func (c *ServerConfig) HMACKeyPath() string {
	switch {
	case c.Audit.HMACKeyFile != "":
		return c.Audit.HMACKeyFile
	case c.Audit.HMACKeyEnv != "":
		return ""
	}
	return filepath.Join(c.DataDir, DefaultHMACKeyName)
}

// PseudonymKeyPath returns where the pseudonym key is read from.
func (c *ServerConfig) PseudonymKeyPath() string {
	if c.Audit.PseudonymKeyFile != "" {
		return c.Audit.PseudonymKeyFile
	}
	return filepath.Join(c.DataDir, DefaultPseudonymKeyName)
}

// Level returns LogLevel as a slog level (info for an unknown level, which
// Validate rejects).
func (c *ServerConfig) Level() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return slog.LevelInfo
	}
	return l
}

var (
	envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	sha256RE  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Validate checks every field after SetDefaults. It is the one place the
// rules live; an error wraps ErrConfig and names the key.
func (c *ServerConfig) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrConfig, key, fmt.Sprintf(format, args...))
	}
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return bad("addr", "%q is not host:port (e.g. 127.0.0.1:8080)", c.Addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return bad("addr", "port %q is not a number from 0 to 65535", port)
	}
	_ = host // empty host listens on every interface, as net.Listen does
	if c.DataDir == "" {
		return bad("data_dir", "is empty")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return bad("log_level", "%q is not debug, info, warn or error", c.LogLevel)
	}
	if c.BodyLimit < 1<<10 {
		return bad("body_limit", "%s is below the minimum of 1KiB", c.BodyLimit)
	}
	if c.MaxEvents < 1 || c.MaxEvents > MaxMaxEvents {
		return bad("max_events", "%d is not between 1 and %d", c.MaxEvents, MaxMaxEvents)
	}
	if err := c.Auth.validate(); err != nil {
		return err
	}
	if err := c.TrustedGateway.validate(); err != nil {
		return err
	}
	if err := c.validateOps(); err != nil {
		return err
	}
	a := &c.Audit
	for _, f := range []struct {
		key string
		v   ByteSize
	}{{"audit.segment_max_size", a.SegmentMaxSize}, {"audit.max_record_size", a.MaxRecordSize}} {
		if f.v <= 0 {
			return bad(f.key, "must be positive")
		}
	}
	if a.MaxRecordSize > a.SegmentMaxSize {
		return bad("audit.max_record_size", "%s is larger than audit.segment_max_size %s", a.MaxRecordSize, a.SegmentMaxSize)
	}
	for _, f := range []struct {
		key string
		v   Duration
	}{{"audit.segment_max_age", a.SegmentMaxAge}, {"audit.checkpoint.every", a.Checkpoint.Every}, {"audit.retention.max_age", a.Retention.MaxAge}} {
		if f.v < 0 {
			return bad(f.key, "%s is negative", f.v)
		}
	}
	if _, err := a.CompressionCodec(); err != nil {
		return err
	}
	if a.Checkpoint.EveryRecords < 0 {
		return bad("audit.checkpoint.every_records", "%d is negative", a.Checkpoint.EveryRecords)
	}
	if a.HMACKeyFile != "" && a.HMACKeyEnv != "" {
		return bad("audit.hmac_key_env", "set only one of audit.hmac_key_file and audit.hmac_key_env")
	}
	if a.HMACKeyEnv != "" && !envNameRE.MatchString(a.HMACKeyEnv) {
		return bad("audit.hmac_key_env", "%q is not an environment variable name", a.HMACKeyEnv)
	}
	if err := a.Witness.validate(a.Store); err != nil {
		return err
	}
	if err := a.Retention.validate(a.Store); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, t := range a.Retention.LegalHolds {
		key := fmt.Sprintf("audit.retention.legal_holds[%d]", i)
		if t == "" {
			return bad(key, "is empty")
		}
		if seen[t] {
			return bad(key, "tenant %q is listed twice", t)
		}
		seen[t] = true
	}
	return c.validateBackends()
}

func (a *AuthConfig) validate() error {
	names := map[string]int{}
	hashes := map[string]int{}
	envs := map[string]int{}
	subjects := map[string]int{}
	for i, t := range a.Tokens {
		key := fmt.Sprintf("auth.tokens[%d]", i)
		bad := func(field, format string, args ...any) error {
			return fmt.Errorf("%w: %s.%s: %s", ErrConfig, key, field, fmt.Sprintf(format, args...))
		}
		if t.Name == "" {
			return bad("name", "is required (it is recorded as the user of everything the token does)")
		}
		if j, dup := names[t.Name]; dup {
			return bad("name", "%q is also the name of auth.tokens[%d]", t.Name, j)
		}
		names[t.Name] = i
		switch t.Role {
		case RoleAdmin:
			if len(t.Tenants) > 0 {
				return bad("tenants", "an admin is not limited to tenants; use role auditor or ingest")
			}
		case RoleAuditor, RoleIngest:
		case RoleMetrics:
			if len(t.Tenants) > 0 {
				return bad("tenants", "a metrics principal reads no records; remove tenants")
			}
		case "":
			return bad("role", "is required (admin, auditor, ingest or metrics)")
		default:
			return bad("role", "%q is not admin, auditor, ingest or metrics", t.Role)
		}
		for j, tn := range t.Tenants {
			if tn == "" {
				return bad(fmt.Sprintf("tenants[%d]", j), "is empty")
			}
		}
		switch {
		case t.CertSubject != "" && (t.TokenSHA256 != "" || t.TokenEnv != ""):
			return bad("cert_subject", "set only one of token_sha256, token_env and cert_subject")
		case t.CertSubject != "":
			if t.Optional {
				return bad("optional", "applies to token_env only")
			}
			if j, dup := subjects[t.CertSubject]; dup {
				return bad("cert_subject", "%q is also the subject of auth.tokens[%d]", t.CertSubject, j)
			}
			subjects[t.CertSubject] = i
		case t.TokenSHA256 == "" && t.TokenEnv == "":
			return bad("token_sha256", "set token_sha256 (the SHA-256 of the token in hex) or token_env")
		case t.TokenSHA256 != "" && t.TokenEnv != "":
			return bad("token_env", "set only one of token_sha256 and token_env")
		case t.TokenSHA256 != "":
			if t.Optional {
				return bad("optional", "applies to token_env only (a token_sha256 principal is always there)")
			}
			h := strings.ToLower(t.TokenSHA256)
			if !sha256RE.MatchString(h) {
				return bad("token_sha256", "is not 64 hex characters (make one with: printf %%s \"$TOKEN\" | sha256sum)")
			}
			if j, dup := hashes[h]; dup {
				return bad("token_sha256", "is the same token as auth.tokens[%d]", j)
			}
			hashes[h] = i
		default:
			if t.Optional && t.TokenEnv == "" {
				return bad("optional", "applies to token_env only")
			}
			if !envNameRE.MatchString(t.TokenEnv) {
				return bad("token_env", "%q is not an environment variable name", t.TokenEnv)
			}
			if j, dup := envs[t.TokenEnv]; dup {
				return bad("token_env", "%s is also the token of auth.tokens[%d]", t.TokenEnv, j)
			}
			envs[t.TokenEnv] = i
		}
	}
	return nil
}

// LoadConfig reads the YAML file at path, substitutes environment variables
// (see ParseConfig), fills in defaults and validates the result.
func LoadConfig(path string) (*ServerConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	c, err := ParseConfig(b, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("%w (config file %s)", err, path)
	}
	return c, nil
}

// ParseConfig parses configuration YAML after substituting ${VAR},
// ${VAR:-default} and ${VAR-default} from lookupEnv ($$ is a literal $;
// full-line comments are left alone), then fills in defaults and validates.
// Unknown keys, values of the wrong type and unset variables without a
// default are errors naming the key and line. An empty document is the
// default configuration.
func ParseConfig(data []byte, lookupEnv func(string) (string, bool)) (*ServerConfig, error) {
	text, err := expandEnv(data, lookupEnv)
	if err != nil {
		return nil, err
	}
	c := &ServerConfig{}
	dec := yaml.NewDecoder(bytes.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(text, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: the file holds more than one YAML document (remove the second ---)", ErrConfig)
	}
	nullStore(text, c) // audit.store: null is the null store (config_backends.go)
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

var (
	yamlLineRE    = regexp.MustCompile(`^line (\d+): (.*)$`)
	yamlUnknownRE = regexp.MustCompile(`^field (.+) not found in type \S+$`)
)

// yamlError rewrites the decoder's errors so each names the dotted key and
// the line: "line 12: unknown key audit.retention.max_agee".
func yamlError(text []byte, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("%w: %s", ErrConfig, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	keys := keyLines(text)
	msgs := make([]string, 0, len(te.Errors))
	for _, e := range te.Errors {
		m := yamlLineRE.FindStringSubmatch(e)
		if m == nil {
			msgs = append(msgs, e)
			continue
		}
		line, _ := strconv.Atoi(m[1])
		if u := yamlUnknownRE.FindStringSubmatch(m[2]); u != nil {
			path := u[1]
			for _, k := range keys[line] {
				if k.name == u[1] {
					path = k.path
					break
				}
			}
			msgs = append(msgs, fmt.Sprintf("line %d: unknown key %s", line, path))
			continue
		}
		msg := m[2]
		if ks := keys[line]; len(ks) > 0 {
			msg = ks[0].path + ": " + msg
		} else if ks := keys[-line]; len(ks) > 0 {
			msg = ks[0].path + ": " + msg
		}
		msgs = append(msgs, fmt.Sprintf("line %d: %s", line, msg))
	}
	return fmt.Errorf("%w: %s", ErrConfig, strings.Join(msgs, "; "))
}

type keyAt struct{ name, path string }

// keyLines maps each line to the mapping keys whose value starts on it
// (for type errors) and, under the negated line, sequence items that start
// on it; it is only built to explain an error.
func keyLines(text []byte) map[int][]keyAt {
	var root yaml.Node
	if yaml.Unmarshal(text, &root) != nil {
		return nil
	}
	out := map[int][]keyAt{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				out[k.Line] = append(out[k.Line], keyAt{k.Value, p})
				if v.Kind == yaml.ScalarNode && v.Line != k.Line {
					out[v.Line] = append(out[v.Line], keyAt{k.Value, p})
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				out[-c.Line] = append(out[-c.Line], keyAt{"", p})
				walk(c, p)
			}
		}
	}
	walk(&root, "")
	return out
}

// LogValue describes the configuration without secrets: token names, roles
// and scopes, never hashes or tokens.
func (c *ServerConfig) LogValue() slog.Value {
	tokens := make([]string, 0, len(c.Auth.Tokens))
	for _, t := range c.Auth.Tokens {
		s := t.Name + ":" + string(t.Role)
		if len(t.Tenants) > 0 {
			s += "[" + strings.Join(t.Tenants, ",") + "]"
		}
		tokens = append(tokens, s)
	}
	a := c.Audit
	return slog.GroupValue(
		slog.String("addr", c.Addr),
		slog.String("data_dir", c.DataDir),
		slog.String("log_level", c.LogLevel),
		slog.String("body_limit", c.BodyLimit.String()),
		slog.Int("max_events", c.MaxEvents),
		slog.Group("auth",
			slog.Any("tokens", tokens),
			slog.Bool("quick_start_env", !c.Auth.DisableQuickStartEnv),
		),
		slog.Group("audit",
			slog.String("segment_max_size", a.SegmentMaxSize.String()),
			slog.String("segment_max_age", a.SegmentMaxAge.String()),
			slog.String("max_record_size", a.MaxRecordSize.String()),
			slog.String("hmac_key_file", c.HMACKeyPath()),
			slog.String("hmac_key_env", a.HMACKeyEnv),
			slog.String("signing_key_file", a.SigningKeyFile),
			slog.Int("checkpoint_every_records", a.Checkpoint.EveryRecords),
			slog.String("checkpoint_every", a.Checkpoint.Every.String()),
			slog.String("retention_max_age", a.Retention.MaxAge.String()),
			slog.Int("legal_holds", len(a.Retention.LegalHolds)),
			slog.String("compression", a.Compression),
			slog.Bool("postings", a.PostingsOn()),
			slog.Bool("preallocate", a.PreallocateOn()),
			slog.Int("witnesses", len(a.Witness.Witnesses)),
		),
		slog.Group("backends", c.backendLogAttrs()...),
		slog.String("query_source", c.Query.Source),
		slog.Group("trusted_gateway", slog.Any("principals", c.TrustedGateway.Principals), slog.Any("networks", c.TrustedGateway.Networks)),
		c.opsLogValue(),
	)
}

// PreallocateOn reports whether the engine preallocates segment files
// (audit.preallocate, DefaultPreallocate unless set).
func (a *AuditConfig) PreallocateOn() bool {
	if a.Preallocate == nil {
		return DefaultPreallocate
	}
	return *a.Preallocate
}

// PostingsOn reports whether new segments get record-level postings
// (audit.postings, true unless set to false).
func (a *AuditConfig) PostingsOn() bool { return a.Postings == nil || *a.Postings }
