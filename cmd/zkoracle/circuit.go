package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/zkoracle/zkoracle/circuits"
)

func init() {
	register("circuit inspect", "print a model circuit's constraints per layer and per gadget", circuitInspect)
}

func circuitInspect(args []string) error {
	m, err := parseModel(flag.NewFlagSet("circuit inspect", flag.ContinueOnError), args)
	if err != nil {
		return err
	}
	fmt.Printf("circuit of %s (model %s)\n\n", m.Name, m.ID()[:16])
	r, err := circuits.Report(m)
	if err != nil {
		return err
	}
	return r.Write(os.Stdout)
}
