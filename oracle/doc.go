// Package oracle is the service clients use: the client API (see
// openapi.yaml), and the pipeline from request to verified result.
//
// A request is persisted (bbolt) before the 202 reply, with its
// idempotency key in the same transaction, then submitted to the job
// queue under its own ID. Provers' results arrive on a durable JetStream
// consumer; each proved result goes to the verifier (Verifier: in process
// or remote over HTTP), and the request ends verified (with the verifier's
// acceptance record) or rejected; failed and expired come from the
// provers. States only move forward: queued, proving, verifying, then one
// of verified, rejected, failed, expired. Callbacks deliver the final
// record with retries. Requests still queued are re-submitted at start and
// every 30 s; the queue drops duplicates.
//
// Models get their keys from a ceremony with the verifier (EnsurePhase1,
// CeremonyWith, VerifierContributor, RegisterRequest), unless the stack runs
// with DevSetup. Model uploads are zkoracle model files or int8 QDQ ONNX
// files (imported with model/onnx).
//
// Start brings up the all-in-one stack of `zkoracle serve`; oracle/api
// holds the API types and oracle/client the Go client.
package oracle
