# zkoracle: make run (the demo), make test (what CI runs).
GO ?= go

.PHONY: run test test-short bench fuzz fixtures build vet

build:
	$(GO) build -o bin/zkoracle ./cmd/zkoracle

# Prove and verify a few MNIST inferences with the mnist-cnn fixture.
run: build
	./bin/zkoracle demo

# go vet, then every test under the race detector (seed corpora of the fuzz
# targets included).
test: vet
	$(GO) test -race -timeout 30m ./...

vet:
	$(GO) vet ./...

test-short:
	$(GO) test -short ./...

# Benchmarks: compile, setup, prove, verify of both fixtures, and the gadgets,
# reporting constraints.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x -count 1 ./circuits/
	$(GO) test -run '^$$' -bench Throughput -benchtime 1x -count 1 ./prover/

# Fuzz the model decoder for a while (CI runs the seed corpus via make test).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 60s ./model/

# Retrain and requantize the fixtures (about 10 minutes on 2 cores); the
# result is bit-for-bit the committed files.
fixtures:
	$(GO) run ./fixtures/gen
