package verifier

import "os"

func tempDir() (string, error) { return os.MkdirTemp("", "zkoracle-verifier-test") }

func readAll(path string) ([]byte, error) { return os.ReadFile(path) }
