// Command zkoracle is the one binary of zkoracle: model tools, circuits,
// proving and (as later issues land) the services.
package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/consensys/gnark/logger"
)

type command struct {
	summary string
	run     func(args []string) error
}

var commands = map[string]command{}

func register(name, summary string, run func(args []string) error) {
	commands[name] = command{summary, run}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: zkoracle COMMAND [ARGS]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-18s %s\n", n, commands[n].summary)
	}
}

func main() {
	logger.Disable() // gnark's own compile logs; zkoracle reports what matters
	args := os.Args[1:]
	// Two-word commands ("model inspect") are registered with a space.
	for n := min(2, len(args)); n >= 1; n-- {
		if c, ok := commands[strings.Join(args[:n], " ")]; ok {
			if err := c.run(args[n:]); err != nil {
				fmt.Fprintf(os.Stderr, "zkoracle %s: %v\n", strings.Join(args[:n], " "), err)
				os.Exit(1)
			}
			return
		}
	}
	usage()
	os.Exit(2)
}
