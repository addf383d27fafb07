package server

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/merkle"
	"github.com/vellumlog/vellum/query"
)

type openAPISpec struct {
	OpenAPI string `yaml:"openapi"`
	Paths   map[string]map[string]struct {
		Security   *[]any `yaml:"security"`
		Parameters []struct {
			Name string `yaml:"name"`
			In   string `yaml:"in"`
		} `yaml:"parameters"`
		Responses map[string]any `yaml:"responses"`
	} `yaml:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]any `yaml:"properties"`
			Required   []string       `yaml:"required"`
		} `yaml:"schemas"`
	} `yaml:"components"`
}

func loadSpec(t *testing.T) *openAPISpec {
	t.Helper()
	b, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var s openAPISpec
	if err := yaml.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if s.OpenAPI != "3.1.0" {
		t.Fatalf("openapi = %q", s.OpenAPI)
	}
	return &s
}

// TestOpenAPIRoutes checks that every route the router serves is in
// openapi.yaml, and every operation there is served.
func TestOpenAPIRoutes(t *testing.T) {
	spec := loadSpec(t)
	srv, err := New(nil, newTestStore(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	router := srv.router()
	for _, rt := range srv.routes() {
		p := rt.path
		if i := strings.Index(p, "/:"); i >= 0 {
			p = p[:i] + "/{" + p[i+2:] + "}"
		}
		key := rt.method + " " + p
		served[key] = true
		// The table is what the router serves.
		probe := strings.ReplaceAll(rt.path, ":seq", "1")
		if h, _, _ := router.Lookup(rt.method, probe); h == nil {
			t.Errorf("%s is in the route table but not routed", key)
		}
	}
	documented := map[string]bool{}
	for path, ops := range spec.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	if !reflect.DeepEqual(served, documented) {
		t.Fatalf("routes and openapi.yaml differ:\n served     %v\n documented %v", keys(served), keys(documented))
	}
	for path, ops := range spec.Paths {
		for method, op := range ops {
			authed := op.Security == nil
			for _, code := range []string{"401", "403"} {
				if _, ok := op.Responses[code]; authed && !ok {
					t.Errorf("%s %s needs a bearer token but documents no %s", method, path, code)
				}
			}
		}
	}
	for _, code := range []string{"413"} {
		if _, ok := spec.Paths["/v1/audit/events"]["post"].Responses[code]; !ok {
			t.Errorf("ingest documents no %s", code)
		}
	}
	if _, ok := spec.Paths["/v1/audit/{seq}"]["get"].Responses["404"]; !ok {
		t.Error("GET /v1/audit/{seq} documents no 404")
	}
}

// TestOpenAPIParameters checks GET /v1/audit documents exactly the
// parameters query.ParseValues accepts.
func TestOpenAPIParameters(t *testing.T) {
	spec := loadSpec(t)
	var got []string
	for _, p := range spec.Paths["/v1/audit"]["get"].Parameters {
		if p.In != "query" {
			t.Errorf("parameter %s is in %s", p.Name, p.In)
		}
		got = append(got, p.Name)
	}
	if !slices.Equal(got, query.Params) {
		t.Fatalf("documented parameters %v, accepted %v", got, query.Params)
	}
}

// TestOpenAPISchemas checks the Record schema against the JSON form of
// vellum.Record, and the Event schema against what the ingest decoder
// accepts.
func TestOpenAPISchemas(t *testing.T) {
	spec := loadSpec(t)
	schemas := spec.Components.Schemas
	for name, typ := range map[string]reflect.Type{
		"Record":    reflect.TypeFor[vellum.Record](),
		"Tool":      reflect.TypeFor[vellum.Tool](),
		"Model":     reflect.TypeFor[vellum.Model](),
		"Outcome":   reflect.TypeFor[vellum.Outcome](),
		"Redaction": reflect.TypeFor[vellum.Redaction](),
	} {
		want := jsonNames(typ)
		got := keys(toSet(schemas[name].Properties))
		if !slices.Equal(got, want) {
			t.Errorf("schema %s has %v, the Go type %v", name, got, want)
		}
	}
	// Every Event property is accepted by the decoder...
	event := schemas["Event"].Properties
	sample := map[string]string{
		"time": `"2026-11-27T10:00:00Z"`, "tool": `{}`, "model": `{}`, "outcome": `{"status":"success"}`,
		"attributes": `{}`, "action": `"a"`,
	}
	for name := range event {
		v, ok := sample[name]
		if !ok {
			v = `"x"`
		}
		body := fmt.Sprintf(`{"action":"a","outcome":{"status":"success"},%q:%s}`, name, v)
		if name == "action" || name == "outcome" {
			body = `{"action":"a","outcome":{"status":"success"}}`
		}
		if _, err := DecodeEvents([]byte(body), DecodeOptions{}); err != nil {
			t.Errorf("documented event field %s is rejected: %v", name, err)
		}
	}
	// ...and every Record field except the store's is an Event property
	// (event_time arrives as time).
	for _, f := range jsonNames(reflect.TypeFor[vellum.Record]()) {
		switch f {
		case "seq", "key_id", "prev_mac", "mac", "redactions", "event_time":
			if _, ok := event[f]; ok {
				t.Errorf("store-assigned %s is documented as an event field", f)
			}
		default:
			if _, ok := event[f]; !ok {
				t.Errorf("record field %s is not documented as an event field", f)
			}
		}
	}
}

func TestOpenAPIStatusEnum(t *testing.T) {
	b, _ := os.ReadFile("openapi.yaml")
	var raw struct {
		Components struct {
			Schemas struct {
				Status struct {
					Enum []string `yaml:"enum"`
				} `yaml:"Status"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(raw.Components.Schemas.Status.Enum, vellum.Statuses) {
		t.Fatalf("Status enum %v, vellum.Statuses %v", raw.Components.Schemas.Status.Enum, vellum.Statuses)
	}
}

func jsonNames(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func toSet[V any](m map[string]V) map[string]bool {
	s := map[string]bool{}
	for k := range m {
		s[k] = true
	}
	return s
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIExportAndProofs checks the export's documented parameters
// against what it accepts, and the proof schemas against the Go types.
func TestOpenAPIExportAndProofs(t *testing.T) {
	spec := loadSpec(t)
	var got []string
	for _, p := range spec.Paths["/v1/audit/export"]["get"].Parameters {
		got = append(got, p.Name)
	}
	if want := append([]string{"format"}, query.FilterParams...); !slices.Equal(got, want) {
		t.Fatalf("export documents %v, accepts %v", got, want)
	}
	got = nil
	for _, p := range spec.Paths["/v1/audit/consistency"]["get"].Parameters {
		got = append(got, p.Name)
	}
	if !slices.Equal(got, []string{"first", "second"}) {
		t.Fatalf("consistency documents %v", got)
	}
	schemas := spec.Components.Schemas
	for name, typ := range map[string]reflect.Type{
		"ConsistencyProof": reflect.TypeFor[consistencyResponse](),
		"Checkpoint":       reflect.TypeFor[checkpointJSON](),
	} {
		if got, want := keys(toSet(schemas[name].Properties)), jsonNames(typ); !slices.Equal(got, want) {
			t.Errorf("schema %s has %v, the Go type %v", name, got, want)
		}
	}
	want := append(jsonNames(reflect.TypeFor[merkle.InclusionProof]()), "leaf_input")
	sort.Strings(want)
	if got := keys(toSet(schemas["InclusionProof"].Properties)); !slices.Equal(got, want) {
		t.Errorf("schema InclusionProof has %v, the response %v", got, want)
	}
	if !slices.Contains(schemas["InclusionProof"].Required, "leaf_input") {
		t.Error("leaf_input is not required")
	}
}
