// Package testenv holds test helpers shared across packages.
package testenv

import "testing"

// SkipUnderRace skips a test that is pure single-goroutine computation
// (accuracy over thousands of images, Groth16 setup and proving) when the
// race detector is on: it finds nothing there and slows such tests 5-10x.
// make test runs them again without -race (see NORACE in the Makefile), so
// a test calling this must be listed there.
func SkipUnderRace(t testing.TB) {
	t.Helper()
	if Race {
		t.Skip("pure computation: make test runs it without -race")
	}
}
