package vellum_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/vellumlog/vellum"

// imports maps each package directory of the module (relative, "." for the
// root) to the imports of its non-test Go files.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != "." || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if !slices.Contains(out[dir], p) {
				out[dir] = append(out[dir], p)
			}
		}
		if _, ok := out[dir]; !ok {
			out[dir] = nil
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func internal(p string) (string, bool) {
	if p == module {
		return ".", true
	}
	if strings.HasPrefix(p, module+"/") {
		return strings.TrimPrefix(p, module+"/"), true
	}
	return "", false
}

// TestArchitecture writes the layering down as rules: who may import whom,
// and who may touch which cryptography.
func TestArchitecture(t *testing.T) {
	all := imports(t)
	// The walk must see the real graph, or every rule passes vacuously.
	if !slices.Contains(all["segment"], module+"/vfs") || !slices.Contains(all["engine"], module+"/segment") ||
		!slices.Contains(all["verify"], module+"/layout") {
		t.Fatalf("import graph looks wrong: segment %v, engine %v, verify %v", all["segment"], all["engine"], all["verify"])
	}
	// mayImport lists, per package, the module packages it may import. A
	// package not listed may import any module package except those
	// forbidden below.
	mayImport := map[string][]string{
		".":       {},
		"vfs":     {},
		"chain":   {"."},
		"segment": {".", "chain", "vfs"},
		"query":   {".", "chain"},
		"index":   {".", "query", "segment"},
		"redact":  {"."},
		// Exports write records; they know nothing of where records come from.
		"export": {"."},
		// Pure Merkle and checkpoint code knows records and files, never
		// the engine: verifiers and auditors' tools use them on their own.
		"merkle":     {"."},
		"checkpoint": {"merkle", "vfs"},
		// The data directory's layout is shared by the engine and the
		// offline tools; it sits below both.
		"layout": {".", "chain", "segment", "vfs"},
		// The AuditStore contract is shared by the engine, the stores and
		// the server, so it knows nothing but records and queries.
		"backends": {".", "query"},
		// Build information and metrics are leaves the server and the
		// command use; the report reads files, never the server.
		"buildinfo": {},
		"metrics":   {".", "buildinfo", "engine"},
		"report":    {".", "checkpoint", "engine", "layout", "merkle", "segment", "verify", "vfs"},
		// Witnesses know checkpoints and files, never the store they
		// watch: a witness runs apart from it (issue 16).
		// The step-stream model is a leaf; the collector maps steps to
		// records and appends through its own Sink interface, never
		// knowing the server or the engine (only the stores' shared
		// error sentinels, from backends) (issue 11).
		"step":      {},
		"collector": {".", "backends", "step", "vfs"},
		"cosign":    {"checkpoint"},
		"witness":   {"checkpoint", "cosign", "merkle", "vfs"},
	}
	// Nothing but the command, the benchmark harness and the example
	// programs (an agent server embedding the engine) may import the
	// server; nothing below the engine may import the engine.
	for dir, ims := range all {
		for _, im := range ims {
			p, ok := internal(im)
			if !ok {
				continue
			}
			if allowed, listed := mayImport[dir]; listed && !slices.Contains(allowed, p) {
				t.Errorf("%s imports %s, outside its layer (allowed: %v)", dir, p, allowed)
			}
			if p == "server" && !strings.HasPrefix(dir, "cmd") && !strings.HasPrefix(dir, "bench") && !strings.HasPrefix(dir, "examples") {
				t.Errorf("%s imports server; only cmd/, bench/ and examples/ may", dir)
			}
			if p == "engine" && slices.Contains([]string{"segment", "chain", "index", "query", "redact", "vfs", "merkle", "checkpoint", "layout", "."}, dir) {
				t.Errorf("%s imports engine", dir)
			}
			// The offline verifier must not trust the engine's code to
			// check the engine's files: it shares only the layout rules.
			if p == "engine" && dir == "verify" {
				t.Errorf("verify imports engine; it may use layout, segment, chain, merkle and checkpoint only")
			}
			// The SQL stores and replication stand beside the engine: they
			// share its contract (backends), not its code.
			if (p == "engine" || p == "server") && strings.HasPrefix(dir, "backends") {
				t.Errorf("%s imports %s; the backends use the engine only through interfaces", dir, p)
			}
		}
	}
}

// TestCryptography keeps the suite FIPS 140-3 friendly: only SHA-256,
// HMAC-SHA256 and Ed25519 from the standard library, and HMAC only in the
// packages that own a key (chain for the record chain, redact for keyed
// pseudonyms).
func TestCryptography(t *testing.T) {
	forbidden := []string{"crypto/md5", "crypto/sha1", "crypto/des", "crypto/rc4", "crypto/dsa", "golang.org/x/crypto"}
	hmacOK := []string{"chain", "redact"}
	for dir, ims := range imports(t) {
		for _, im := range ims {
			for _, f := range forbidden {
				if im == f || strings.HasPrefix(im, f+"/") {
					t.Errorf("%s imports %s, which is not FIPS-approved here", dir, im)
				}
			}
			if im == "crypto/hmac" && !slices.Contains(hmacOK, dir) {
				t.Errorf("%s imports crypto/hmac; only %v may (use chain.Key.Sum)", dir, hmacOK)
			}
		}
	}
}

// Issue 8's shape of the engine: no type with more than maxMethods methods
// (give a new responsibility to a small type of its own, with a comment
// saying which goroutine owns its fields), no function longer than
// maxFuncLines lines from its func line to its closing brace.
const (
	maxMethods   = 25
	maxFuncLines = 80
)

// TestEngineShape keeps package engine's types small and its functions
// short (issue 8): it counts the methods of each receiver type and the
// lines of each function in the package's non-test files, and names every
// offender.
func TestEngineShape(t *testing.T) {
	methods, long, err := shape("engine")
	if err != nil {
		t.Fatal(err)
	}
	if len(methods) == 0 {
		t.Fatal("found no methods in engine: is the test reading the right directory?")
	}
	for typ, ms := range methods {
		if len(ms) > maxMethods {
			t.Errorf("engine: type %s has %d methods, over %d: %s", typ, len(ms), maxMethods, strings.Join(ms, ", "))
		}
	}
	for _, f := range long {
		t.Errorf("engine: %s, over %d lines", f, maxFuncLines)
	}
}

// shape parses the non-test Go files of dir and returns the methods of each
// receiver type (by base name, as "name (file:line)") and the functions
// longer than maxFuncLines lines (as "name (file:line) is n lines").
func shape(dir string) (methods map[string][]string, long []string, err error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, nil, err
	}
	fset := token.NewFileSet()
	methods = map[string][]string{}
	for _, path := range paths {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, nil, err
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			pos := fset.Position(fd.Pos())
			name := fd.Name.Name
			if fd.Recv != nil && len(fd.Recv.List) == 1 {
				typ := receiverType(fd.Recv.List[0].Type)
				name = typ + "." + name
				methods[typ] = append(methods[typ], fmt.Sprintf("%s (%s:%d)", fd.Name.Name, filepath.Base(path), pos.Line))
			}
			if n := fset.Position(fd.End()).Line - pos.Line + 1; n > maxFuncLines {
				long = append(long, fmt.Sprintf("%s (%s:%d) is %d lines", name, filepath.Base(path), pos.Line, n))
			}
		}
	}
	return methods, long, nil
}

// receiverType returns the base type name of a method's receiver: T for
// T, *T, T[P] and *T[P, Q].
func receiverType(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.ParenExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return fmt.Sprintf("%T", e)
		}
	}
}
