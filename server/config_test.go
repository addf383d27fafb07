package server

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"SET": "value", "EMPTY": "", "PORT": "9090", "_U9": "u"}
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr string // substring; "" = no error
	}{
		{name: "no references", in: "addr: x\n", want: "addr: x\n"},
		{name: "set", in: "a: ${SET}", want: "a: value"},
		{name: "underscore and digits", in: "${_U9}", want: "u"},
		{name: "twice on a line", in: "${SET}-${PORT}", want: "value-9090"},
		{name: "unset without default", in: "a: 1\nb: ${NOPE}\n", wantErr: "line 2: environment variable NOPE is not set"},
		{name: "set but empty without default", in: "a: ${EMPTY}", want: "a: "},

		{name: "colon-dash: set", in: "${SET:-d}", want: "value"},
		{name: "colon-dash: unset", in: "${NOPE:-d}", want: "d"},
		{name: "colon-dash: set but empty", in: "${EMPTY:-d}", want: "d"},
		{name: "dash: set", in: "${SET-d}", want: "value"},
		{name: "dash: unset", in: "${NOPE-d}", want: "d"},
		{name: "dash: set but empty stays empty", in: "${EMPTY-d}", want: ""},
		{name: "empty default", in: "${NOPE:-}", want: ""},
		{name: "default with punctuation", in: "${NOPE:-127.0.0.1:8080}", want: "127.0.0.1:8080"},
		{name: "default with dash", in: "${NOPE:--x}", want: "-x"},

		{name: "dollar dollar", in: "p: $$HOME", want: "p: $HOME"},
		{name: "escaped reference", in: "$${SET}", want: "${SET}"},
		{name: "lone dollar", in: "price: 5$ and $x", want: "price: 5$ and $x"},
		{name: "dollar at end", in: "a$", want: "a$"},
		{name: "full-line comment untouched", in: "# ${NOPE}\n  # ${NOPE:-x} $$\na: ${SET}\n", want: "# ${NOPE}\n  # ${NOPE:-x} $$\na: value\n"},
		{name: "trailing comment substituted", in: "a: 1 # ${SET}", want: "a: 1 # value"},
		{name: "value not re-expanded", in: "${DOLLAR}", wantErr: "DOLLAR is not set"},

		{name: "unterminated", in: "a: 1\nb: ${SET\n", wantErr: "line 2: unterminated ${"},
		{name: "empty name", in: "${}", wantErr: "does not start with a variable name"},
		{name: "digit first", in: "${1X}", wantErr: "does not start with a variable name"},
		{name: "bad operator", in: "${SET:+x}", wantErr: "want ${SET}, ${SET:-default} or ${SET-default}"},
		{name: "space in name", in: "${SE T}", wantErr: "want ${SE}"},
		{name: "CRLF lines counted", in: "a: 1\r\nb: 2\r\nc: ${NOPE}\r\n", wantErr: "line 3:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := expandEnv([]byte(tt.in), envOf(env))
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("substituted value is not expanded again", func(t *testing.T) {
		got, err := expandEnv([]byte("${V}"), envOf(map[string]string{"V": "${SET}$$"}))
		if err != nil || string(got) != "${SET}$$" {
			t.Fatalf("got %q, %v", got, err)
		}
	})
}

func TestParseConfigEnvironment(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string // data_dir
	}{
		{"colon-dash unset", map[string]string{}, "/default"},
		{"colon-dash empty", map[string]string{"D": ""}, "/default"},
		{"colon-dash set", map[string]string{"D": "/set"}, "/set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte("data_dir: ${D:-/default}\n"), envOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if c.DataDir != tt.want {
				t.Fatalf("data_dir = %q, want %q", c.DataDir, tt.want)
			}
		})
	}
	t.Run("dash keeps set-but-empty, then the default applies", func(t *testing.T) {
		// ${D-x} with D="" gives an empty data_dir, which SetDefaults
		// fills like any absent value.
		c, err := ParseConfig([]byte("data_dir: \"${D-/x}\"\n"), envOf(map[string]string{"D": ""}))
		if err != nil || c.DataDir != DefaultDataDir {
			t.Fatalf("data_dir = %q, %v", c.DataDir, err)
		}
	})
	t.Run("number from the environment", func(t *testing.T) {
		c, err := ParseConfig([]byte("max_events: ${N}\n"), envOf(map[string]string{"N": "42"}))
		if err != nil || c.MaxEvents != 42 {
			t.Fatalf("max_events = %d, %v", c.MaxEvents, err)
		}
	})
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error
	}{
		{"unknown top-level key", "addr: 127.0.0.1:1\nadress: x\n", []string{"line 2", "unknown key adress"}},
		{"unknown nested key", "audit:\n  retention:\n    max_agee: 1d\n", []string{"line 3", "unknown key audit.retention.max_agee"}},
		{"unknown key in a list item", "auth:\n  tokens:\n    - name: a\n      role: admin\n      token: x\n", []string{"line 5", "unknown key auth.tokens[0].token"}},
		{"two unknown keys", "a: 1\nb: 2\n", []string{"line 1: unknown key a", "line 2: unknown key b"}},
		{"wrong type", "max_events: lots\n", []string{"line 1", "max_events", "lots"}},
		{"bad size", "audit:\n  segment_max_size: 64XB\n", []string{"line 2", "audit.segment_max_size", "is not a size"}},
		{"bad duration", "audit:\n  segment_max_age: soon\n", []string{"line 2", "audit.segment_max_age", "not a duration"}},
		{"size as a map", "body_limit: {a: 1}\n", []string{"line 1", "body_limit"}},
		{"syntax error", "addr: [\n", []string{"bad config"}},
		{"duplicate key", "addr: a:1\naddr: b:2\n", []string{"already defined"}},
		{"two documents", "addr: 127.0.0.1:1\n---\naddr: 127.0.0.1:2\n", []string{"more than one YAML document"}},
		{"unset variable", "log_level: info\naddr: ${VELLUM_TEST_SURELY_UNSET}\n", []string{"line 2", "VELLUM_TEST_SURELY_UNSET is not set"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.yaml), envOf(nil))
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("err = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	hash := HashToken("a-token-of-some-length")
	tests := []struct {
		name string
		yaml string
		key  string // the key the error must name; "" = valid
	}{
		{"empty file", "", ""},
		{"addr without port", "addr: localhost\n", "addr"},
		{"addr bad port", "addr: localhost:http\n", "addr"},
		{"addr any interface", "addr: :8080\n", ""},
		{"log level", "log_level: loud\n", "log_level"},
		{"body limit tiny", "body_limit: 10\n", "body_limit"},
		{"max events over", "max_events: 1000001\n", "max_events"},
		{"max events negative", "max_events: -1\n", "max_events"},
		{"record larger than segment", "audit:\n  segment_max_size: 1MiB\n  max_record_size: 2MiB\n", "audit.max_record_size"},
		{"negative age", "audit:\n  segment_max_age: -1h\n", "audit.segment_max_age"},
		{"negative retention", "audit:\n  retention:\n    max_age: -5m\n", "audit.retention.max_age"},
		{"retention at the floor", "audit:\n  retention:\n    max_age: 90d\n", ""},
		{"retention below the floor", "audit:\n  retention:\n    max_age: 30d\n", "audit.retention.max_age"},
		{"retention below the floor allowed", "audit:\n  retention:\n    max_age: 30d\n    allow_below_floor: true\n", ""},
		{"retention below a raised floor", "audit:\n  retention:\n    max_age: 365d\n    floor: 2190d\n", "audit.retention.max_age"},
		{"tenant retention longer", "audit:\n  retention:\n    max_age: 365d\n    tenants: {hipaa: 2190d}\n", ""},
		{"tenant retention shorter", "audit:\n  retention:\n    max_age: 365d\n    tenants: {x: 100d}\n", "audit.retention.tenants.x"},
		{"tenant retention alone", "audit:\n  retention:\n    tenants: {x: 100d}\n", "audit.retention.tenants.x"},
		{"purge interval tiny", "audit:\n  retention:\n    purge_every: 10ms\n", "audit.retention.purge_every"},
		{"retention on a SQL store", "audit:\n  store: sqlite\n  sqlite: {path: /tmp/x.db}\n  retention:\n    max_age: 365d\n", ""},
		{"retention and holds on a SQL store", "audit:\n  store: sqlite\n  sqlite: {path: /tmp/x.db}\n  retention:\n    max_age: 365d\n    legal_holds: [acme]\n", "audit.retention.legal_holds"},
		{"retention on the null store", "audit:\n  store: 'null'\n  retention:\n    max_age: 365d\n", "audit.retention.max_age"},
		{"negative checkpoint records", "audit:\n  checkpoint:\n    every_records: -1\n", "audit.checkpoint.every_records"},
		{"both key sources", "audit:\n  hmac_key_file: k\n  hmac_key_env: K\n", "audit.hmac_key_env"},
		{"bad key env name", "audit:\n  hmac_key_env: 'A B'\n", "audit.hmac_key_env"},
		{"compression zstd", "audit:\n  compression: zstd\n", ""},
		{"compression unknown", "audit:\n  compression: gzip\n", "audit.compression"},
		{"legal hold empty", "audit:\n  retention:\n    legal_holds: ['']\n", "audit.retention.legal_holds[0]"},
		{"legal hold twice", "audit:\n  retention:\n    legal_holds: [a, a]\n", "audit.retention.legal_holds[1]"},
		{"token ok", "auth:\n  tokens:\n    - {name: a, role: admin, token_sha256: " + hash + "}\n", ""},
		{"token upper-case hash ok", "auth:\n  tokens:\n    - {name: a, role: admin, token_sha256: " + strings.ToUpper(hash) + "}\n", ""},
		{"token without name", "auth:\n  tokens:\n    - {role: admin, token_sha256: " + hash + "}\n", "auth.tokens[0].name"},
		{"token names twice", "auth:\n  tokens:\n    - {name: a, role: admin, token_env: A}\n    - {name: a, role: ingest, token_env: B}\n", "auth.tokens[1].name"},
		{"token without role", "auth:\n  tokens:\n    - {name: a, token_env: A}\n", "auth.tokens[0].role"},
		{"token unknown role", "auth:\n  tokens:\n    - {name: a, role: root, token_env: A}\n", "auth.tokens[0].role"},
		{"admin with tenants", "auth:\n  tokens:\n    - {name: a, role: admin, tenants: [x], token_env: A}\n", "auth.tokens[0].tenants"},
		{"empty tenant", "auth:\n  tokens:\n    - {name: a, role: auditor, tenants: [''], token_env: A}\n", "auth.tokens[0].tenants[0]"},
		{"no token", "auth:\n  tokens:\n    - {name: a, role: admin}\n", "auth.tokens[0].token_sha256"},
		{"both token sources", "auth:\n  tokens:\n    - {name: a, role: admin, token_env: A, token_sha256: " + hash + "}\n", "auth.tokens[0].token_env"},
		{"hash not hex", "auth:\n  tokens:\n    - {name: a, role: admin, token_sha256: xyz}\n", "auth.tokens[0].token_sha256"},
		{"hash twice", "auth:\n  tokens:\n    - {name: a, role: admin, token_sha256: " + hash + "}\n    - {name: b, role: ingest, token_sha256: " + hash + "}\n", "auth.tokens[1].token_sha256"},
		{"bad env name", "auth:\n  tokens:\n    - {name: a, role: admin, token_env: 'x-y'}\n", "auth.tokens[0].token_env"},
		{"env twice", "auth:\n  tokens:\n    - {name: a, role: admin, token_env: A}\n    - {name: b, role: ingest, token_env: A}\n", "auth.tokens[1].token_env"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.yaml), envOf(nil))
			if tt.key == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.key+":") {
				t.Fatalf("err = %v, want it to name %s", err, tt.key)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c, err := ParseConfig(nil, envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := &ServerConfig{
		Addr: "127.0.0.1:8080", DataDir: "./vellum-data", LogLevel: "info",
		BodyLimit: 8 << 20, MaxEvents: 10_000,
		Audit: AuditConfig{
			SegmentMaxSize: 32 << 20, SegmentMaxAge: Duration(time.Hour), MaxRecordSize: 1 << 20,
			Checkpoint:  CheckpointConfig{EveryRecords: 100_000, Every: Duration(10 * time.Second)},
			Compression: "s2",
			Postings:    new(true),
			Retention:   RetentionConfig{Floor: DefaultRetentionFloor, PurgeEvery: DefaultPurgeEvery},
			Disk:        DiskConfig{WarnFree: 1 << 30, MinFree: 256 << 20, CheckInterval: Duration(10 * time.Second)},
			Store:       StoreSegment,
		},
		Query:     QueryConfig{Source: SourceStore},
		LogFormat: "text",
		AccessLog: "all",
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", c, want)
	}
	if !reflect.DeepEqual(DefaultConfig(), want) {
		t.Fatal("DefaultConfig differs from an empty file")
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if got := c.HMACKeyPath(); got != filepath.Join("vellum-data", "hmac.key") {
		t.Fatalf("HMACKeyPath = %q", got)
	}
	c.Audit.HMACKeyEnv = "K"
	if c.HMACKeyPath() != "" {
		t.Fatal("HMACKeyPath with an env key should be empty")
	}
	c.Audit.HMACKeyFile = "/k"
	if c.HMACKeyPath() != "/k" {
		t.Fatal("HMACKeyPath ignores hmac_key_file")
	}
	if c.Level() != slog.LevelInfo {
		t.Fatal("Level")
	}
}

func TestExampleConfigLoads(t *testing.T) {
	t.Setenv("VELLUM_ACME_AUDITOR_TOKEN", "acme-auditor-token-0123456789")
	t.Setenv("VELLUM_SUPPORT_BOT_TOKEN", "support-bot-token-0123456789")
	t.Setenv("VELLUM_DATA_DIR", "/var/lib/vellum")
	c, err := LoadConfig("../vellum.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != DefaultAddr || c.DataDir != "/var/lib/vellum" || c.LogLevel != "info" {
		t.Fatalf("substitution: addr %q data_dir %q log_level %q", c.Addr, c.DataDir, c.LogLevel)
	}
	// The example states the defaults: loading it must change nothing but
	// what it sets on purpose.
	d := DefaultConfig()
	d.DataDir = c.DataDir
	d.Auth = c.Auth
	if len(c.Audit.Retention.LegalHolds) != 0 {
		t.Fatalf("legal holds = %q", c.Audit.Retention.LegalHolds)
	}
	d.Audit.Retention.LegalHolds = c.Audit.Retention.LegalHolds
	// The example spells out the redaction defaults (preset default,
	// action replace) that the zero value means.
	if r := c.Audit.Redaction; !reflect.DeepEqual(r.Presets, []string{"default"}) || r.Action != "replace" || len(r.Rules) != 0 {
		t.Fatalf("redaction = %+v", r)
	}
	d.Audit.Redaction = c.Audit.Redaction
	// And audit.preallocate's default, which unset means.
	if c.Audit.Preallocate == nil || *c.Audit.Preallocate != DefaultPreallocate {
		t.Fatalf("preallocate = %v, want the default %v", c.Audit.Preallocate, DefaultPreallocate)
	}
	d.Audit.Preallocate = c.Audit.Preallocate
	if !reflect.DeepEqual(c, d) {
		t.Fatalf("example differs from the defaults:\n got %+v\nwant %+v", c, d)
	}
	if len(c.Auth.Tokens) != 3 || c.Auth.Tokens[1].Tenants[0] != "acme" || c.Auth.Tokens[2].Role != RoleIngest {
		t.Fatalf("tokens = %+v", c.Auth.Tokens)
	}
	if c.Auth.Tokens[0].TokenSHA256 != HashToken("example-auditor-token-0123456789") {
		t.Fatal("the example's token_sha256 is not the hash its comment claims")
	}
	a, err := NewAuthenticator(&c.Auth, os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	if a.Len() < 3 {
		t.Fatalf("principals = %d", a.Len())
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := LoadConfig(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("err = %v", err)
	}
}

func TestConfigLogValueHasNoSecrets(t *testing.T) {
	hash := HashToken("a-very-secret-token-value")
	c, err := ParseConfig([]byte("auth:\n  tokens:\n    - {name: ops, role: admin, token_sha256: "+hash+"}\n    - {name: acme, role: auditor, tenants: [acme], token_env: SECRET_ENV}\n"), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", c)
	out := buf.String()
	if strings.Contains(out, hash) || strings.Contains(out, hash[:16]) {
		t.Fatalf("log line contains the token hash: %s", out)
	}
	for _, want := range []string{`"addr":"127.0.0.1:8080"`, "ops:admin", "acme:auditor[acme]", `"segment_max_size":"32MiB"`} {
		if !strings.Contains(out, want) {
			t.Fatalf("log line lacks %s: %s", want, out)
		}
	}
}

func TestByteSizeAndDuration(t *testing.T) {
	sizes := []struct {
		in   string
		want ByteSize
		bad  bool
	}{
		{in: "0", want: 0}, {in: "1024", want: 1024}, {in: "8MiB", want: 8 << 20}, {in: "8 MiB", want: 8 << 20},
		{in: "1GiB", want: 1 << 30}, {in: "2TiB", want: 2 << 40}, {in: "512KiB", want: 512 << 10}, {in: "7B", want: 7},
		{in: "8MB", bad: true}, {in: "1.5MiB", bad: true}, {in: "-1", bad: true}, {in: "MiB", bad: true},
		{in: "99999999999TiB", bad: true},
	}
	for _, tt := range sizes {
		t.Run("size "+tt.in, func(t *testing.T) {
			got, err := ParseByteSize(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("accepted %q as %d", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %d, %v; want %d", got, err, tt.want)
			}
			if back, err := ParseByteSize(got.String()); err != nil || back != got {
				t.Fatalf("String %q does not parse back", got.String())
			}
		})
	}
	durs := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "0", want: 0}, {in: "90s", want: 90 * time.Second}, {in: "1h30m", want: 90 * time.Minute},
		{in: "30d", want: 30 * 24 * time.Hour}, {in: "2555d", want: 2555 * 24 * time.Hour},
		{in: "1.5d", bad: true}, {in: "d", bad: true}, {in: "soon", bad: true}, {in: "99999999d", bad: true},
	}
	for _, tt := range durs {
		t.Run("duration "+tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("accepted %q", tt.in)
				}
				return
			}
			if err != nil || time.Duration(got) != tt.want {
				t.Fatalf("got %v, %v; want %v", time.Duration(got), err, tt.want)
			}
			if back, err := ParseDuration(got.String()); err != nil || back != got {
				t.Fatalf("String %q does not parse back", got.String())
			}
		})
	}
}

// TestPostingsSetting: audit.postings is on unless set to false.
func TestPostingsSetting(t *testing.T) {
	for yaml, want := range map[string]bool{"": true, "audit:\n  postings: true\n": true, "audit:\n  postings: false\n": false} {
		c, err := ParseConfig([]byte(yaml), envOf(nil))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Audit.PostingsOn(); got != want {
			t.Errorf("%q: PostingsOn = %v, want %v", yaml, got, want)
		}
	}
	if _, err := ParseConfig([]byte("audit:\n  postings: sometimes\n"), envOf(nil)); err == nil {
		t.Error("postings: sometimes was accepted")
	}
}

// TestPreallocateSetting: audit.preallocate is DefaultPreallocate unless
// set, and is refused with a store that has no segment files.
func TestPreallocateSetting(t *testing.T) {
	for yaml, want := range map[string]bool{"": DefaultPreallocate, "audit:\n  preallocate: true\n": true, "audit:\n  preallocate: false\n": false} {
		c, err := ParseConfig([]byte(yaml), envOf(nil))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Audit.PreallocateOn(); got != want {
			t.Errorf("%q: PreallocateOn = %v, want %v", yaml, got, want)
		}
	}
	for _, yaml := range []string{
		"audit:\n  preallocate: sometimes\n",
		"audit:\n  store: sqlite\n  sqlite:\n    path: /tmp/a.db\n  preallocate: true\n",
		"audit:\n  store: null\n  preallocate: true\n",
	} {
		if _, err := ParseConfig([]byte(yaml), envOf(nil)); err == nil {
			t.Errorf("%q was accepted", yaml)
		}
	}
	c, err := ParseConfig([]byte("audit:\n  store: null\n  preallocate: false\n"), envOf(nil))
	if err != nil || c.Audit.PreallocateOn() {
		t.Errorf("preallocate: false with store null: %v", err)
	}
}

// TestSegmentSettingsRefusedOnOtherStores: a setting of the segment engine
// that would do nothing on another store is refused, naming the key.
func TestSegmentSettingsRefusedOnOtherStores(t *testing.T) {
	for _, tc := range []struct{ name, yaml, key string }{
		{"compression", "  compression: zstd\n", "audit.compression"},
		{"signing key", "  signing_key_file: /etc/vellum/signing.key\n", "audit.signing_key_file"},
		{"checkpoint records", "  checkpoint:\n    every_records: 10\n", "audit.checkpoint"},
		{"checkpoint interval", "  checkpoint:\n    every: 1m\n", "audit.checkpoint"},
	} {
		for _, store := range []string{"  store: null\n", "  store: sqlite\n  sqlite:\n    path: /tmp/a.db\n"} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := ParseConfig([]byte("audit:\n"+store+tc.yaml), envOf(nil))
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.key) {
					t.Errorf("err = %v, want one naming %s", err, tc.key)
				}
			})
		}
	}
	// Their defaults are fine (audit.postings, which SetDefaults turns
	// on when unset, cannot tell an explicit true from the default).
	for _, yaml := range []string{"audit:\n  store: null\n", "audit:\n  store: null\n  compression: s2\n  postings: false\n"} {
		if _, err := ParseConfig([]byte(yaml), envOf(nil)); err != nil {
			t.Errorf("%q: %v", yaml, err)
		}
	}
}
