package bench

import (
	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/frontend"
)

func witnessOf(c frontend.Circuit) (witness.Witness, error) {
	return frontend.NewWitness(c, ecc.BN254.ScalarField())
}
