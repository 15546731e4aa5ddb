package verifier

// Cost is what one call consumed, in deterministic units, with an estimate
// of what the same work costs a canister on the Internet Computer.
//
// The units are counted, not timed: pairings (Miller loops) and the public
// input multi-scalar multiplication size follow from the key; bytes decoded
// from the request. The instruction estimate multiplies them by per-unit
// constants calibrated on the wasm build of the verify core under wazero
// (zkoracle bench: about 25 ms per mnist-cnn verification with the key
// already decoded, 15-20 ms more to decode a key with its subgroup checks),
// counting one instruction per nanosecond of wazero time; the split between
// pairings and MSM terms is an estimate (a 5-input model verifies in about
// the same time, so pairings dominate). It is an order of magnitude for
// budgeting, not a measurement of the IC.
type Cost struct {
	Pairings     int   `json:"pairings"`
	PublicTerms  int   `json:"public_input_terms"`
	BytesDecoded int   `json:"bytes_decoded"`
	Instructions int64 `json:"ic_instructions_estimate"`
	Cycles       int64 `json:"ic_cycles_estimate"`
	// Messages is how many update messages a canister would split the
	// call into (ceremony work exceeds one message's budget for large
	// circuits); 0 for calls that fit one.
	Messages int64 `json:"ic_messages_estimate,omitempty"`
}

// Per-unit instruction estimates (see Cost) and the IC's limits.
const (
	InstrPerMillerLoop = 3_000_000
	InstrFinalExp      = 4_000_000
	InstrPerTerm       = 100_000
	InstrPerByte       = 60
	// InstrKeyPoint is the cost of decoding one checked G1/G2 key point.
	InstrKeyPoint = 700_000

	QueryBudget     = 5_000_000_000  // instructions per query call
	UpdateBudget    = 40_000_000_000 // instructions per update call
	CyclesPerUpdate = 5_000_000      // base fee of an update on a 13-node subnet
)

// verifyCost is the cost of checking one proof under a key with nPublic
// public inputs and nCommit commitments, having decoded n bytes.
func verifyCost(nPublic, nCommit, n int) Cost {
	c := Cost{Pairings: 3 + 2*nCommit, PublicTerms: nPublic + nCommit, BytesDecoded: n}
	c.Instructions = int64(c.Pairings)*InstrPerMillerLoop + InstrFinalExp*int64(1+min(nCommit, 1)) +
		int64(c.PublicTerms)*InstrPerTerm + int64(n)*InstrPerByte
	return c
}

// registerCost is the cost of decoding and checking a key of n bytes with
// nPoints points.
func registerCost(nPoints, n int) Cost {
	c := Cost{BytesDecoded: n}
	c.Instructions = int64(nPoints)*InstrKeyPoint + int64(n)*InstrPerByte
	return c
}

// InstrCeremonyPoint estimates the instructions per curve point a
// ceremony call processes per pass (decode with subgroup check, a scalar
// multiplication or an MSM term): the order of a wasm G1 scalar
// multiplication.
const InstrCeremonyPoint = 400_000

// ceremonyCost is the cost of a ceremony call over n bytes of compressed
// points, each processed in passes passes.
func ceremonyCost(n, passes int) Cost {
	c := Cost{BytesDecoded: n}
	c.Instructions = int64(n/32)*int64(passes)*InstrCeremonyPoint + int64(n)*InstrPerByte
	if c.Instructions > UpdateBudget {
		c.Messages = (c.Instructions + UpdateBudget - 1) / UpdateBudget
	}
	return c
}

// plainCost is the cost of a call that only decodes and moves data.
func plainCost(n int) Cost {
	return Cost{BytesDecoded: n, Instructions: int64(n) * InstrPerByte}
}

// charge fills in the cycles for an update (queries are free) and reports
// whether the call fits the budget of its kind.
func (c *Cost) charge(update bool) bool {
	if update {
		c.Cycles = c.Instructions + CyclesPerUpdate
		return c.Instructions <= UpdateBudget
	}
	return c.Instructions <= QueryBudget
}
