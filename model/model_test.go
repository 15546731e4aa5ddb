package model

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func i64(v int64) *int64 { return &v }

func tensor(name string, dt DType, zp int64, shape ...int) Tensor {
	return Tensor{Name: name, DType: dt, Shape: shape, Scale: 1, ZeroPoint: zp}
}

// build returns a validated model with the given input and ops; the output is
// the last op's tensor.
func build(t *testing.T, in Tensor, ops ...Op) *Model {
	t.Helper()
	m := &Model{Format: Format, Version: Version, Name: "t", Input: in, Ops: ops, Output: ops[len(ops)-1].Out.Name}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m
}

func run(t *testing.T, m *Model, x ...int8) []int64 {
	t.Helper()
	tr, err := m.Run(x)
	if err != nil {
		t.Fatal(err)
	}
	return tr.Output
}

func TestRequantizeRounding(t *testing.T) {
	for _, tc := range []struct {
		a, m   int64
		s      int
		zp     int64
		lo, hi int64
		want   int64
	}{
		{5, 1, 1, 0, -128, 127, 3},              // 2.5 rounds up
		{-5, 1, 1, 0, -128, 127, -2},            // -2.5 rounds up, towards +inf
		{-6, 1, 1, 0, -128, 127, -3},            // exact
		{7, 3, 2, 0, -128, 127, 5},              // 21/4 = 5.25
		{-7, 3, 2, 0, -128, 127, -5},            // -5.25
		{6, 1, 2, 0, -128, 127, 2},              // 1.5 -> 2
		{-6, 1, 2, 0, -128, 127, -1},            // -1.5 -> -1
		{1000, 1, 1, 0, -128, 127, 127},         // clamp high
		{-1000, 1, 1, 0, -128, 127, -128},       // clamp low
		{10, 1, 1, -128, -128, 127, -123},       // zero point added after rounding
		{-10, 1, 1, -128, -128, 127, -128},      // fused ReLU: min = zp
		{-3, 1, 1, 10, 10, 20, 10},              // ReLU with zp 10
		{100, 1, 1, 10, 10, 20, 20},             // clamp to a sub-range
		{1 << 40, 1 << 20, 61, 0, -128, 127, 1}, // 2^60/2^61 = 0.5 rounds up, no overflow
	} {
		got := RequantizeValue(tc.a, tc.m, tc.s, tc.zp, tc.lo, tc.hi)
		if got != tc.want {
			t.Errorf("requantize(%d*%d>>%d, zp %d, [%d,%d]): got %d, want %d", tc.a, tc.m, tc.s, tc.zp, tc.lo, tc.hi, got, tc.want)
		}
	}
}

func TestDenseRequantizePerChannel(t *testing.T) {
	// x = [3, -2, 1] with zero point -1, so x-zx = [4, -1, 2].
	m := build(t, tensor("x", Int8, -1, 3),
		Op{Kind: Dense, In: []string{"x"}, Out: tensor("acc", Int32, 0, 2),
			Weights: Int8s{1, 2, 3, -4, 5, -128}, Bias: []int32{10, -7}},
		Op{Kind: Requantize, In: []string{"acc"}, Out: tensor("y", Int8, 5, 2),
			Multiplier: []int64{3, 1}, Shift: []int{2, 4}, Min: i64(-128), Max: i64(127)},
	)
	tr, err := m.Run([]int8{3, -2, 1})
	if err != nil {
		t.Fatal(err)
	}
	// acc0 = 10 + 4 - 2 + 6 = 18; acc1 = -7 - 16 - 5 - 256 = -284.
	if got, want := tr.Values["acc"], []int64{18, -284}; !slices.Equal(got, want) {
		t.Fatalf("acc: got %v, want %v", got, want)
	}
	// ch0: (18*3+2)>>2 = 14, +5 = 19. ch1: (-284+8)>>4 = -276>>4 = -18 (-17.25 floors to -18), +5 = -13.
	if got, want := tr.Output, []int64{19, -13}; !slices.Equal(got, want) {
		t.Fatalf("y: got %v, want %v", got, want)
	}
}

func TestConvPoolOps(t *testing.T) {
	// 1x3x3 input, zero point 0, conv 2x2 stride 1 padding 1 -> 1x4x4.
	x := []int8{1, 2, 3, 4, 5, 6, 7, 8, -9}
	m := build(t, tensor("x", Int8, 0, 1, 3, 3),
		Op{Kind: Conv2D, In: []string{"x"}, Out: tensor("c", Int32, 0, 1, 4, 4),
			Weights: Int8s{1, 0, 0, -1}, Bias: []int32{1}, Kernel: 2, Padding: 1},
	)
	// out[oy][ox] = 1 + x[oy-1][ox-1] - x[oy][ox] (cells outside are zero).
	want := make([]int64, 16)
	g := func(y, x0 int) int64 {
		if y < 0 || y >= 3 || x0 < 0 || x0 >= 3 {
			return 0
		}
		return int64(x[y*3+x0])
	}
	for oy := range 4 {
		for ox := range 4 {
			want[oy*4+ox] = 1 + g(oy-1, ox-1) - g(oy, ox)
		}
	}
	got := run(t, m, x...)
	if !slices.Equal(got, want) {
		t.Fatalf("conv: got %v, want %v", got, want)
	}
	// Spot checks by hand: corners see padding, the centre both taps.
	for _, c := range []struct{ i, want int64 }{{0, 0}, {5, 1 + 1 - 5}, {15, 1 - 9}, {7, 1 + 3}, {3, 1}} { // out[0][0] = 1 - x[0][0] = 0
		if got[c.i] != c.want {
			t.Errorf("conv[%d]: got %d, want %d", c.i, got[c.i], c.want)
		}
	}

	// Pools over 1x4x4 with kernel 2 stride 2; avgpool sums and scales its zero point.
	p := build(t, tensor("x", Int8, 3, 1, 4, 4),
		Op{Kind: MaxPool, In: []string{"x"}, Out: tensor("mp", Int8, 3, 1, 2, 2), Kernel: 2, Stride: 2},
	)
	in := []int8{1, 2, 3, 4, -5, -6, -7, -8, 9, 10, 11, 12, -128, 127, 0, 0}
	if got, want := run(t, p, in...), []int64{2, 4, 127, 12}; !slices.Equal(got, want) {
		t.Fatalf("maxpool: got %v, want %v", got, want)
	}
	a := build(t, tensor("x", Int8, 3, 1, 4, 4),
		Op{Kind: AvgPool, In: []string{"x"}, Out: tensor("ap", Int32, 12, 1, 2, 2), Kernel: 2, Stride: 2},
	)
	if got, want := run(t, a, in...), []int64{1 + 2 - 5 - 6, 3 + 4 - 7 - 8, 9 + 10 - 128 + 127, 11 + 12}; !slices.Equal(got, want) {
		t.Fatalf("avgpool: got %v, want %v", got, want)
	}
}

func TestElementwiseOps(t *testing.T) {
	tbl := make(Int8s, 256)
	for i := range tbl {
		tbl[i] = int8(127 - i) // reverses the range
	}
	m := build(t, tensor("x", Int8, -2, 4),
		Op{Kind: ReLU, In: []string{"x"}, Out: tensor("r", Int8, -2, 4)},
		Op{Kind: Add, In: []string{"x", "r"}, Out: tensor("s", Int32, 0, 4), Coeffs: []int64{2, -3}},
		Op{Kind: Lookup, In: []string{"x"}, Out: tensor("l", Int8, 0, 4), Table: tbl, Fn: "reverse"},
	)
	tr, err := m.Run([]int8{-128, -3, 0, 127})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tr.Values["r"], []int64{-2, -2, 0, 127}; !slices.Equal(got, want) {
		t.Errorf("relu: got %v, want %v", got, want)
	}
	// s = 2*(x+2) - 3*(r+2)
	if got, want := tr.Values["s"], []int64{-252, -2, 4 - 6, 258 - 387}; !slices.Equal(got, want) {
		t.Errorf("add: got %v, want %v", got, want)
	}
	if got, want := tr.Values["l"], []int64{127, 2, -1, -128}; !slices.Equal(got, want) {
		t.Errorf("lookup: got %v, want %v", got, want)
	}
}

func TestRunRejectsWrongInputLength(t *testing.T) {
	m := build(t, tensor("x", Int8, 0, 4), Op{Kind: ReLU, In: []string{"x"}, Out: tensor("r", Int8, 0, 4)})
	if _, err := m.Run([]int8{1, 2}); err == nil {
		t.Fatal("got no error for a 2-value input to a 4-value model")
	}
}

func TestBoundsAreSound(t *testing.T) {
	// Every value Run produces lies inside the static bound of its tensor.
	m := build(t, tensor("x", Int8, -128, 1, 4, 4),
		Op{Kind: Conv2D, In: []string{"x"}, Out: tensor("c", Int32, 0, 2, 3, 3), Kernel: 2,
			Weights: Int8s{1, -2, 3, -4, 127, -128, 0, 5}, Bias: []int32{-100, 100}},
		Op{Kind: Requantize, In: []string{"c"}, Out: tensor("q", Int8, -128, 2, 3, 3),
			Multiplier: []int64{300, 77}, Shift: []int{12, 9}, Min: i64(-128), Max: i64(127)},
		Op{Kind: AvgPool, In: []string{"q"}, Out: tensor("p", Int32, -512, 2, 2, 2), Kernel: 2},
		Op{Kind: Flatten, In: []string{"p"}, Out: tensor("f", Int32, -512, 8)},
		Op{Kind: Dense, In: []string{"f"}, Out: tensor("o", Int32, 0, 2), Weights: Int8s{1, 2, 3, 4, 5, 6, 7, 8, -8, -7, -6, -5, -4, -3, -2, -1}, Bias: []int32{0, 1}},
	)
	x := make([]int8, 16)
	for trial := range 200 {
		for i := range x {
			x[i] = int8((trial*31 + i*97 + trial*i*13) % 256)
		}
		tr, err := m.Run(x)
		if err != nil {
			t.Fatal(err)
		}
		for name, vals := range tr.Values {
			for i, v := range vals {
				if b := m.Info().Bounds[name][i]; v < b.Lo || v > b.Hi {
					t.Fatalf("%s[%d] = %d outside bound [%d, %d]", name, i, v, b.Lo, b.Hi)
				}
			}
		}
	}
}

func validJSON(t testing.TB) []byte {
	m := &Model{Format: Format, Version: Version, Name: "v", Input: tensor("x", Int8, 0, 1, 2, 2),
		Ops: []Op{
			{Kind: Flatten, In: []string{"x"}, Out: tensor("f", Int8, 0, 4)},
			{Kind: Dense, In: []string{"f"}, Out: tensor("d", Int32, 0, 2), Weights: Int8s{1, 2, 3, 4, 5, 6, 7, 8}, Bias: []int32{1, 2}},
			{Kind: Requantize, In: []string{"d"}, Out: tensor("y", Int8, 0, 2), Multiplier: []int64{1}, Shift: []int{3}, Min: i64(-128), Max: i64(127)},
		}, Output: "y"}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeRejectsMalformed(t *testing.T) {
	good := string(validJSON(t))
	if _, err := Decode(strings.NewReader(good)); err != nil {
		t.Fatalf("valid model rejected: %v", err)
	}
	for _, tc := range []struct{ name, from, to, want string }{
		{"truncated", good, good[:len(good)/2], "unexpected EOF"},
		{"not json", good, "weights: yes", "invalid character"},
		{"wrong format", `"format":"zkoracle.model"`, `"format":"onnx"`, `format "onnx"`},
		{"future version", `"version":1`, `"version":2`, "unsupported version 2"},
		{"unknown field", `"name":"v"`, `"name":"v","extra":1`, "unknown field"},
		{"dangling input", `"in":["d"]`, `"in":["nope"]`, `op 2 (requantize "y"): input "nope" is not defined`},
		{"bad weights length", `"bias":[1,2]`, `"bias":[1,2,3]`, `op 1 (dense "d"): 8 weights and 3 biases`},
		{"shape mismatch", `"name":"y","dtype":"int8","shape":[2]`, `"name":"y","dtype":"int8","shape":[3]`, `op 2 (requantize "y"): declared shape [3], inferred [2]`},
		{"wrong dtype", `"name":"d","dtype":"int32"`, `"name":"d","dtype":"int8"`, `op 1 (dense "d"): declared dtype int8, want int32`},
		{"duplicate tensor", `"name":"y","dtype"`, `"name":"f","dtype"`, `tensor "f" is defined twice`},
		{"zero shift", `"shift":[3]`, `"shift":[0]`, "shift 0 out of"},
		{"bad clamp", `"min":-128`, `"min":-129`, "not a sub-range"},
		{"foreign parameter", `"op":"flatten",`, `"op":"flatten","kernel":3,`, `parameter "kernel" does not apply to flatten`},
		{"bad base64", `"weights":"`, `"weights":"!!`, "illegal base64"},
		{"missing output", `"output":"y"`, `"output":"z"`, `output "z" is not a tensor`},
		{"unknown op", `"op":"flatten"`, `"op":"softmax"`, `unknown op kind "softmax"`},
		{"trailing data", good, good + "{}", "trailing data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(good, tc.from, tc.to, 1)
			if bad == good {
				t.Fatalf("replacement %q not found", tc.from)
			}
			_, err := Decode(strings.NewReader(bad))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestDecodeRejectsOverflow(t *testing.T) {
	// A dense layer whose accumulator may exceed int32 is refused.
	w := make(Int8s, 1<<16)
	for i := range w {
		w[i] = -128
	}
	m := &Model{Format: Format, Version: Version, Name: "big", Input: tensor("x", Int8, 0, 1<<16),
		Ops: []Op{{Kind: Dense, In: []string{"x"}, Out: tensor("d", Int32, 0, 1), Weights: w, Bias: []int32{1 << 30}}}, Output: "d"}
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "outside int32") {
		t.Fatalf("got %v, want an int32 overflow error", err)
	}
}

func TestIDIsCanonical(t *testing.T) {
	b := validJSON(t)
	m1, err := Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	pretty, _ := json.MarshalIndent(v, "", "    ")
	m2, err := Decode(bytes.NewReader(pretty))
	if err != nil {
		t.Fatal(err)
	}
	if m1.ID() != m2.ID() {
		t.Fatalf("reformatting changed the ID: %s vs %s", m1.ID(), m2.ID())
	}
	m2.Ops[1].Weights[0]++
	if m1.ID() == m2.ID() {
		t.Fatal("changing a weight kept the ID")
	}
	if len(m1.ID()) != 64 {
		t.Fatalf("ID %q is not hex SHA-256", m1.ID())
	}
}

func FuzzDecode(f *testing.F) {
	good := validJSON(f)
	f.Add(good)
	f.Add(good[:len(good)-7])
	f.Add([]byte(`{"format":"zkoracle.model","version":1,"input":{"name":"x","dtype":"int8","shape":[2],"scale":1,"zero_point":0},"ops":[{"op":"relu","in":["x"],"out":{"name":"x","dtype":"int8","shape":[2],"scale":1,"zero_point":0}}],"output":"x"}`))
	f.Add([]byte(`{"format":"zkoracle.model","version":1,"input":{"name":"x","dtype":"int8","shape":[1,3,3],"scale":1,"zero_point":0},"ops":[{"op":"maxpool","in":["x"],"kernel":2,"out":{"name":"p","dtype":"int8","shape":[1,2,2],"scale":1,"zero_point":0}}],"output":"p"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		// A model that decodes re-encodes to a model with the same ID and runs.
		enc, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		m2, err := Decode(bytes.NewReader(enc))
		if err != nil {
			t.Fatalf("canonical encoding rejected: %v", err)
		}
		if m.ID() != m2.ID() {
			t.Fatal("ID changed through the canonical encoding")
		}
		if m.Input.Size() <= 1<<12 {
			if _, err := m.Run(make([]int8, m.Input.Size())); err != nil {
				t.Fatal(err)
			}
		}
	})
}
