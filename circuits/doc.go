// Package circuits compiles a quantized model (package model) into a gnark
// circuit over BN254 whose satisfying assignments are exactly the reference
// executor's runs: the weights are constants of the circuit (the verifying
// key binds the model), and the public inputs bind the input and the output
// (package layout, v1).
//
// # What each op costs (R1CS, measured by make bench and circuit inspect)
//
//	input            2 per byte: an 8-bit range check; packing 31 bytes per
//	                 public input is one equation per public input
//	dense, conv2d    free: constant weights make each output a linear
//	                 combination; gnark folds one longer than 1,000 terms
//	                 into a new wire (1 constraint)
//	avgpool, add,    free (linear); an average pool is an exact window sum
//	flatten          whose 1/k^2 the next requantize absorbs
//	requantize       Requantizer: 6.2-6.9 per activation with a clamp table
//	(+ReLU, clamp)   (large layers, table included), 12 with range checks
//	                 (small layers)
//	relu, maxpool    Max: 2 + one range check per comparison
//	lookup           Activation: a 256-entry logderivlookup table
//	argmax           Argmax: 2k + 2 + k range checks over k outputs
//
// The compiler (NewPlan) picks the requantize proof per layer from the
// static bounds of package model: a clamp table costs about one constraint
// per entry, shared by every layer with the same clamp, and pays off for
// thousands of activations.
//
// # Soundness
//
// Every hint output is bound: the quotient of a requantize by the remainder
// range check plus the table membership or the range proof's checks; the
// comparison bit of Max and the one-hot vector of Argmax by booleanity and a
// range check of the signed difference. Range checks use std/rangecheck on
// linear combinations (the requantize equation is folded into the remainder
// check); no value is decomposed into bits. Static bounds come from
// model.Info, which model.Decode computes by interval analysis over all int8
// inputs, so every checked width covers every honest value, and the widths
// keep every sum far below the field modulus (no wrap-around).
//
// # Concurrency
//
// A compiled constraint system must not be solved (proved) by two goroutines
// at once: gnark v0.16's lookup blueprints cache solver state without
// enough synchronisation and panic. Give each worker its own copy.
package circuits
