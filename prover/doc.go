// Package prover turns a model and an input into a Groth16 proof, at scale.
//
//   - Store keeps, per model ID, the compiled circuit, the proving key (raw,
//     read back unchecked: only this store writes it), the verifying key and
//     meta.json (constraints, public inputs, layout version, and which setup
//     made the keys). Keys come from a ceremony (Store.Ceremony: phase 2
//     per model on the store's phase 1, its states and transcript kept in
//     the model's ceremony/ directory, CheckCeremony re-verifies them from
//     scratch) or, for development, gnark's single-party setup
//     (Store.DevSetup, marked insecure). Preparation is serialised between
//     processes by a file lock and renamed into place whole.
//   - Prover runs the reference executor, builds the witness and proves,
//     a bounded number of proofs at a time (DefaultConcurrency: one per 4
//     cores, as gnark already uses every core for one proof), with an LRU
//     key cache bounded in bytes and one constraint system per running
//     proof (gnark's lookup solver state must not be shared).
//   - Queue is the NATS JetStream side: a work-queue stream of jobs with one
//     shared durable pull consumer, a results stream keyed by job ID (the
//     message ID deduplicates a job proved twice), a dead-letter stream, and
//     an object-store bucket from which a fresh worker fetches the keys it
//     lacks. StartEmbedded runs the NATS server in process.
//   - Worker serves the queue; see its doc for the delivery contract
//     (explicit acks after the result is recorded, in-progress acks while
//     proving, terminal vs retried failures, dead letters).
//   - ProofFile is the offline proof format of `zkoracle prove` / `verify`.
package prover
