# zkoracle: make run (the demo), make test (what CI runs).
GO ?= go

.PHONY: run test test-short bench gobench fuzz fixtures build vet

build:
	$(GO) build -o bin/zkoracle ./cmd/zkoracle

# Prove and verify a few MNIST inferences with the mnist-cnn fixture.
run: build
	./bin/zkoracle demo

# go vet, then every test under the race detector (seed corpora of the fuzz
# targets included), then the pure-computation tests that skip themselves
# under -race (accuracy over the test sets, Groth16 setup and proving: the
# race detector finds nothing there and slows them 5-10x) without it.
NORACE = TestRecordedAccuracy|TestFixtureOutputsMatchExecutor|TestFixtureProofs|TestLeNetFloat|TestLeNetProves|TestCeremony
test: vet
	$(GO) test -race -timeout 30m ./...
	$(GO) test -count=1 -timeout 30m -run '^($(NORACE))$$' ./fixtures/ ./circuits/ ./model/onnx/ ./verifier/

vet:
	$(GO) vet ./...

test-short:
	$(GO) test -short ./...

# The benchmark suite: bench/results/{results.json,RESULTS.md,*.png} and the
# table in README.md, then the gadget micro-benchmarks (constraints, naive
# baselines). Go benchmarks of compile/setup/prove/verify, the queue and the
# verifier: make gobench.
bench: build
	./bin/zkoracle bench --out bench/results --readme README.md
	$(GO) test -run '^$$' -bench Gadget -benchtime 1x -count 1 ./circuits/

gobench:
	$(GO) test -run '^$$' -bench . -benchtime 3x -count 1 ./circuits/
	$(GO) test -run '^$$' -bench Throughput -benchtime 1x -count 1 ./prover/
	$(GO) test -run '^$$' -bench . -benchtime 2s -count 1 ./verifier/

# Fuzz the decoders for a while each (CI runs the seed corpora via make test).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 60s ./model/
	for f in FuzzDecodeKey FuzzDecodeProof FuzzRequest; do $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 30s ./verifier/ || exit 1; done
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./model/onnx/
	for f in FuzzDecodePhase1 FuzzDecodePhase2 FuzzDecodeSRS; do $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 30s ./verifier/ceremony/ || exit 1; done

# Retrain and requantize the fixtures (about 10 minutes on 2 cores); the
# result is bit-for-bit the committed files.
fixtures:
	$(GO) run ./fixtures/gen
