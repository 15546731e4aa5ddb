package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// Format and Version identify the file format Decode accepts.
const (
	Format  = "zkoracle.model"
	Version = 1
)

// MaxFileSize bounds what Decode reads (a 784-56-10 MLP is about 60 KiB).
const MaxFileSize = 64 << 20

// DType is a tensor's integer type.
type DType string

// The tensor types of the IR.
const (
	Int8  DType = "int8"
	Int32 DType = "int32"
)

// Kind names an op.
type Kind string

// The ops of the IR; their semantics are in the package doc.
const (
	Dense      Kind = "dense"
	Conv2D     Kind = "conv2d"
	Requantize Kind = "requantize"
	ReLU       Kind = "relu"
	MaxPool    Kind = "maxpool"
	AvgPool    Kind = "avgpool"
	Add        Kind = "add"
	Flatten    Kind = "flatten"
	Lookup     Kind = "lookup"
)

// Tensor declares a value of the graph.
type Tensor struct {
	Name      string  `json:"name"`
	DType     DType   `json:"dtype"`
	Shape     []int   `json:"shape"`
	Scale     float64 `json:"scale"`
	ZeroPoint int64   `json:"zero_point"`
	// ChannelScales, when set, gives one scale per channel (axis 0) and
	// overrides Scale: the accumulators of per-channel weights carry them.
	ChannelScales []float64 `json:"channel_scales,omitempty"`
}

// Size returns the number of elements.
func (t Tensor) Size() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Int8s is an int8 array stored as base64 in JSON.
type Int8s []int8

// MarshalJSON encodes the bytes as a base64 string.
func (v Int8s) MarshalJSON() ([]byte, error) {
	b := make([]byte, len(v))
	for i, x := range v {
		b[i] = byte(x)
	}
	return json.Marshal(base64.StdEncoding.EncodeToString(b))
}

// UnmarshalJSON decodes a base64 string.
func (v *Int8s) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("int8 array must be a base64 string")
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("int8 array: %w", err)
	}
	*v = make(Int8s, len(b))
	for i, x := range b {
		(*v)[i] = int8(x)
	}
	return nil
}

// Op is one node of the graph. Which parameters it carries depends on Kind.
type Op struct {
	Kind Kind     `json:"op"`
	In   []string `json:"in"`
	Out  Tensor   `json:"out"`

	// dense, conv2d: W is [N][K] (dense) or [Co][C][kh][kw] (conv2d).
	Weights Int8s   `json:"weights,omitempty"`
	Bias    []int32 `json:"bias,omitempty"`
	// conv2d, maxpool, avgpool: square kernel side, stride (0 means 1), padding.
	Kernel  int `json:"kernel,omitempty"`
	Stride  int `json:"stride,omitempty"`
	Padding int `json:"padding,omitempty"`

	// requantize: one multiplier and shift per tensor (length 1) or per
	// channel (length = Out.Shape[0]); output clamped to [Min, Max].
	Multiplier []int64 `json:"multiplier,omitempty"`
	Shift      []int   `json:"shift,omitempty"`
	Min        *int64  `json:"min,omitempty"`
	Max        *int64  `json:"max,omitempty"`

	// add: out = Coeffs[0]*(a-za) + Coeffs[1]*(b-zb).
	Coeffs []int64 `json:"coeffs,omitempty"`

	// lookup: out = Table[x+128]; Fn names the tabulated function.
	Table Int8s  `json:"table,omitempty"`
	Fn    string `json:"fn,omitempty"`
}

// stride returns the op's stride, defaulting to 1.
func (o *Op) stride() int {
	if o.Stride == 0 {
		return 1
	}
	return o.Stride
}

// Model is a quantized network: an int8 input, ops in execution order, and
// the name of the output tensor.
type Model struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	Name    string `json:"name"`
	Doc     string `json:"doc,omitempty"`
	Input   Tensor `json:"input"`
	Ops     []Op   `json:"ops"`
	Output  string `json:"output"`

	info *Info // derived by Validate
}

// Decode reads, validates and returns a model. Every error says what is wrong
// and, for op errors, which op.
func Decode(r io.Reader) (*Model, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("model file larger than %d bytes", MaxFileSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Model
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode model: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decode model: trailing data after the model object")
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Load decodes the model file at path.
func Load(path string) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Encode returns the canonical encoding: compact JSON, fields in declaration
// order. Decode(Encode(m)) gives back an equal model.
func (m *Model) Encode() ([]byte, error) {
	return json.Marshal(m)
}

// ID returns the hex SHA-256 of the canonical encoding.
func (m *Model) ID() string {
	b, err := m.Encode()
	if err != nil {
		panic(err) // only plain data types: Marshal cannot fail
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Save writes the model to path, indented for review; the ID does not depend
// on the indentation.
func (m *Model) Save(path string) error {
	b, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Info returns what Validate derived: tensors by name and static bounds.
// It is nil until Validate succeeded.
func (m *Model) Info() *Info { return m.info }
