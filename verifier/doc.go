// Package verifier is the lightweight verifier that behaves like an
// Internet Computer canister. It links gnark's Groth16 backend and
// gnark-crypto, chi and bbolt, never the circuits, the prover or the oracle
// (a test checks `go list -deps`).
//
// Update calls (register_model, retire_model, set_controllers,
// submit_result) run one at a time, each in one bbolt transaction, so an
// error rolls the whole call back like a trap; query calls (verify,
// get_result, list_models, stats) run concurrently on read-only snapshots.
// State is versioned and survives restarts and upgrades. Admin calls need a
// controller's bearer token (only its SHA-256 is stored). Requests over
// 2 MiB are refused (413) and replies kept within 2/3 MiB, as on the IC.
// Every call is metered (see Cost) and refused over the IC's budgets.
//
// A result is accepted only if its proof verifies under the model's key
// with public inputs the verifier rebuilds from the submitted input and
// output (model/layout); the prover's public witness is never used. The
// verify core is verifier/core, which also builds for GOOS=wasip1
// (verifier/wasm; verifier/wasmhost runs it under wazero).
//
// Keys come from a Groth16 ceremony the verifier takes part in (see
// ceremony.go and verifier/ceremony): it contributes its own randomness to
// phase 1 once (set_phase1 keeps only a chain that includes it) and to each
// model's phase 2 (contribute), and at register_model re-derives the
// verifying key from its phase 1, the circuit and the verified chain, which
// must include its contribution for that model. Ceremony files travel as
// content-addressed blobs in 1 MiB chunks (upload_chunk, query/blob).
// Single-party keys are refused unless the service is opened with
// AllowDevKeys.
package verifier
