# Vellum: `make test` runs everything CI runs; `make run` starts the server.
GO       ?= go
FUZZTIME ?= 10000x
PKGS     := ./...
# staticcheck at a pinned version, fetched through the module proxy and
# cached by the go command: nothing to install by hand.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# The OpenAPI linter, pinned; npx fetches it from the npm registry once.
REDOCLY  ?= @redocly/cli@2.77.0

.PHONY: all build run test check lint-openapi pg-up test-race test-fips fuzz-smoke bench-smoke bench fuzz clean

all: build

build:
	$(GO) build -buildvcs=auto -o vellum ./cmd/vellum

# The README's run command: a server on 127.0.0.1:8080 with ./vellum-data.
run:
	$(GO) run ./cmd/vellum serve

# The README's test command: formatting, vet, go.mod tidiness, staticcheck
# and a macOS build, the OpenAPI lint, the whole suite under the race
# detector, the suite again under FIPS 140-only crypto, every fuzz target
# briefly, and every benchmark once as a smoke test.
test: check lint-openapi pg-up test-race test-fips fuzz-smoke bench-smoke

check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) mod tidy -diff
	GOOS=darwin $(GO) build $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

# server/openapi.yaml must lint clean (redocly.yaml holds the rules); a
# lint error fails make test.
lint-openapi:
	npx --yes $(REDOCLY) lint --config redocly.yaml server/openapi.yaml

# The PostgreSQL the tests use (docs/backends.md, "Tests"): VELLUM_TEST_PG_DSN,
# or a local cluster on 127.0.0.1:5432 that this starts (and installs) when
# nothing answers. Under CI=true a missing PostgreSQL fails the tests.
pg-up:
	./scripts/pg-up.sh

test-race:
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

test-fips:
	GODEBUG=fips140=only $(GO) test -count=1 -timeout 30m $(PKGS)

fuzz-smoke:
	./fuzz/run.sh $(FUZZTIME)

bench-smoke:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 20m $(PKGS)

# Long runs, not part of `make test`.
bench:
	./bench/run.sh

fuzz:
	./fuzz/run.sh 2000000x

clean:
	rm -f vellum
