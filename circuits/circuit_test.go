package circuits

import (
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/test"

	"github.com/zkoracle/zkoracle/fixtures"
	"github.com/zkoracle/zkoracle/fixtures/mnist"
	"github.com/zkoracle/zkoracle/model"
)

func loadFixture(t testing.TB, name string) *model.Model {
	t.Helper()
	m, err := fixtures.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func testInput(t testing.TB, n int) []int8 {
	t.Helper()
	img, _, err := mnist.TestImage(n)
	if err != nil {
		t.Fatal(err)
	}
	return model.PixelsToInput(img)
}

func TestFixtureConstraints(t *testing.T) {
	for _, name := range fixtures.Names {
		m := loadFixture(t, name)
		cs, err := Compile(m)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := NewPlan(m)
		t.Logf("%s: %d constraints, %d public inputs, tables %v", name, cs.GetNbConstraints(), cs.GetNbPublicVariables(), p.Tables())
	}
}

func TestFixtureEngine(t *testing.T) {
	m := loadFixture(t, "mnist-cnn")
	c, err := New(m)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		w, _, err := Assign(m, testInput(t, i))
		if err != nil {
			t.Fatal(err)
		}
		if err := test.IsSolved(c, w, ecc.BN254.ScalarField()); err != nil {
			t.Fatalf("image %d: %v", i, err)
		}
	}
}
