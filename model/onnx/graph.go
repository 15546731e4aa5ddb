package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	pb "github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// Limits of what the importer takes: the file, and any tensor (input or
// activation) in values.
const (
	MaxFileSize = 256 << 20
	MaxTensor   = 1 << 22
)

// checkedSize multiplies dimensions, refusing overflow past MaxTensor.
func checkedSize(shape []int) (int, error) {
	n := 1
	for _, d := range shape {
		if d <= 0 || d > MaxTensor {
			return 0, fmt.Errorf("dimension %d in %v", d, shape)
		}
		if n *= d; n > MaxTensor {
			return 0, fmt.Errorf("shape %v has over %d values", shape, MaxTensor)
		}
	}
	return n, nil
}

// Graph is an ONNX graph reduced to what the importer needs: one input of
// fixed shape (batch 1), nodes in their file order (ONNX requires
// topological order), constants and one output.
type Graph struct {
	Name     string
	Producer string
	Opset    int64
	Input    string
	Shape    []int // of the input, batch included
	Output   string
	Nodes    []*Node
	Consts   map[string]*Const
}

// Node is one operator application.
type Node struct {
	Index int // position in the file's node list
	Of    int // nodes in the file
	Op    string
	Name  string
	In    []string
	Out   []string
	Attrs map[string]*pb.AttributeProto
}

// Where says where a node sits in the graph, for error messages.
func (n *Node) Where() string {
	name := n.Name
	if name == "" {
		name = "(unnamed)"
	}
	return fmt.Sprintf("node %d of %d %q (inputs %s, outputs %s)", n.Index+1, n.Of, name,
		strings.Join(n.In, ", "), strings.Join(n.Out, ", "))
}

// Const is an initializer (or Constant node): its shape and its values as
// float64 (float tensors) or int64 (integer tensors).
type Const struct {
	Dims  []int
	Float []float64
	Int   []int64
	Type  pb.TensorProto_DataType
}

// Size is the number of elements.
func (c *Const) Size() int {
	n := 1
	for _, d := range c.Dims {
		n *= d
	}
	return n
}

// Supported lists the ONNX ops the importer understands.
var Supported = []string{
	"Gemm", "MatMul", "Conv", "Relu", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten",
	"Reshape", "Add", "BatchNormalization", "Sigmoid", "Tanh", "Identity", "Dropout", "Constant",
	"QuantizeLinear", "DequantizeLinear",
}

// UnsupportedError names an op the importer does not handle and where it is.
type UnsupportedError struct {
	Op, Where string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("unsupported ONNX op %s at %s (supported: %s)", e.Op, e.Where, strings.Join(Supported, ", "))
}

// ReadFile parses an ONNX file.
func ReadFile(path string) (*Graph, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > MaxFileSize {
		return nil, fmt.Errorf("%s: %d bytes, over the %d-byte limit", path, fi.Size(), MaxFileSize)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	g, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return g, nil
}

// Parse decodes an ONNX model (protobuf) and checks that every node is an
// op the importer supports, naming the first one that is not.
func Parse(b []byte) (*Graph, error) {
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("onnx: %d bytes, over the %d-byte limit", len(b), MaxFileSize)
	}
	mp := &pb.ModelProto{}
	if err := proto.Unmarshal(b, mp); err != nil {
		return nil, fmt.Errorf("onnx: not a valid ONNX protobuf (truncated or corrupt file?): %w", err)
	}
	pg := mp.GetGraph()
	if pg == nil || len(pg.GetNode()) == 0 {
		return nil, errors.New("onnx: the file holds no graph (truncated or not an ONNX model?)")
	}
	g := &Graph{Name: pg.GetName(), Producer: strings.TrimSpace(mp.GetProducerName() + " " + mp.GetProducerVersion()), Consts: map[string]*Const{}}
	for _, o := range mp.GetOpsetImport() {
		if o.GetDomain() == "" || o.GetDomain() == "ai.onnx" {
			g.Opset = o.GetVersion()
		}
	}
	for _, t := range pg.GetInitializer() {
		c, err := constOf(t)
		if err != nil {
			return nil, fmt.Errorf("onnx: initializer %q: %w", t.GetName(), err)
		}
		g.Consts[t.GetName()] = c
	}
	var inputs []*pb.ValueInfoProto
	for _, in := range pg.GetInput() {
		if _, ok := g.Consts[in.GetName()]; !ok {
			inputs = append(inputs, in)
		}
	}
	if len(inputs) != 1 {
		return nil, fmt.Errorf("onnx: the graph has %d inputs besides its weights, the importer takes exactly one", len(inputs))
	}
	if len(pg.GetOutput()) != 1 {
		return nil, fmt.Errorf("onnx: the graph has %d outputs, the importer takes exactly one", len(pg.GetOutput()))
	}
	g.Input, g.Output = inputs[0].GetName(), pg.GetOutput()[0].GetName()
	tt := inputs[0].GetType().GetTensorType()
	if tt == nil || pb.TensorProto_DataType(tt.GetElemType()) != pb.TensorProto_FLOAT {
		return nil, fmt.Errorf("onnx: input %q must be a float tensor", g.Input)
	}
	for i, d := range tt.GetShape().GetDim() {
		v := int(d.GetDimValue())
		if v <= 0 {
			if i == 0 { // symbolic batch dimension
				v = 1
			} else {
				return nil, fmt.Errorf("onnx: input %q dimension %d is not fixed (%q)", g.Input, i, d.GetDimParam())
			}
		}
		g.Shape = append(g.Shape, v)
	}
	if len(g.Shape) < 2 || g.Shape[0] != 1 {
		return nil, fmt.Errorf("onnx: input %q has shape %v, want [1, ...] (batch 1)", g.Input, g.Shape)
	}
	if n, err := checkedSize(g.Shape); err != nil {
		return nil, fmt.Errorf("onnx: input %q: %v", g.Input, err)
	} else if n > MaxTensor {
		return nil, fmt.Errorf("onnx: input %q has %d values, the limit is %d", g.Input, n, MaxTensor)
	}
	for i, n := range pg.GetNode() {
		node := &Node{Index: i, Of: len(pg.GetNode()), Op: n.GetOpType(), Name: n.GetName(), In: n.GetInput(), Out: n.GetOutput(), Attrs: map[string]*pb.AttributeProto{}}
		for _, a := range n.GetAttribute() {
			node.Attrs[a.GetName()] = a
		}
		g.Nodes = append(g.Nodes, node)
		if d := n.GetDomain(); d != "" && d != "ai.onnx" {
			return nil, &UnsupportedError{Op: d + "." + node.Op, Where: node.Where()}
		}
		if !slices.Contains(Supported, node.Op) {
			return nil, &UnsupportedError{Op: node.Op, Where: node.Where()}
		}
		if node.Op == "Constant" {
			a := node.Attrs["value"]
			if a == nil || a.GetT() == nil || len(node.Out) != 1 {
				return nil, fmt.Errorf("onnx: %s: a Constant needs a tensor value", node.Where())
			}
			c, err := constOf(a.GetT())
			if err != nil {
				return nil, fmt.Errorf("onnx: %s: %w", node.Where(), err)
			}
			g.Consts[node.Out[0]] = c
		}
	}
	return g, nil
}

// constOf decodes a tensor's data (raw little-endian or typed fields).
func constOf(t *pb.TensorProto) (*Const, error) {
	c := &Const{Type: pb.TensorProto_DataType(t.GetDataType())}
	for _, d := range t.GetDims() {
		if d < 0 || d > 1<<28 {
			return nil, fmt.Errorf("dimension %d", d)
		}
		c.Dims = append(c.Dims, int(d))
	}
	n := c.Size()
	if n > 1<<28 {
		return nil, fmt.Errorf("%d elements", n)
	}
	if t.GetDataLocation() == pb.TensorProto_EXTERNAL {
		return nil, errors.New("external data is not supported (save the model with its weights inside)")
	}
	raw := t.GetRawData()
	width := map[pb.TensorProto_DataType]int{pb.TensorProto_FLOAT: 4, pb.TensorProto_DOUBLE: 8, pb.TensorProto_INT8: 1,
		pb.TensorProto_UINT8: 1, pb.TensorProto_INT32: 4, pb.TensorProto_INT64: 8}[c.Type]
	if width == 0 {
		return nil, fmt.Errorf("element type %s is not supported", c.Type)
	}
	if raw != nil && len(raw) != n*width {
		return nil, fmt.Errorf("%d bytes of data for %d elements of %d bytes", len(raw), n, width)
	}
	switch c.Type {
	case pb.TensorProto_FLOAT, pb.TensorProto_DOUBLE:
		c.Float = make([]float64, n)
		switch {
		case raw != nil && width == 4:
			for i := range n {
				c.Float[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])))
			}
		case raw != nil:
			for i := range n {
				c.Float[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
			}
		case len(t.GetFloatData()) == n:
			for i, v := range t.GetFloatData() {
				c.Float[i] = float64(v)
			}
		case len(t.GetDoubleData()) == n:
			copy(c.Float, t.GetDoubleData())
		default:
			return nil, fmt.Errorf("%d float values for %d elements", max(len(t.GetFloatData()), len(t.GetDoubleData())), n)
		}
	default:
		c.Int = make([]int64, n)
		switch {
		case raw != nil:
			for i := range n {
				switch c.Type {
				case pb.TensorProto_INT8:
					c.Int[i] = int64(int8(raw[i]))
				case pb.TensorProto_UINT8:
					c.Int[i] = int64(raw[i])
				case pb.TensorProto_INT32:
					c.Int[i] = int64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
				case pb.TensorProto_INT64:
					c.Int[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
				}
			}
		case c.Type == pb.TensorProto_INT64 && len(t.GetInt64Data()) == n:
			copy(c.Int, t.GetInt64Data())
		case len(t.GetInt32Data()) == n: // int8, uint8 and int32 live in int32_data
			for i, v := range t.GetInt32Data() {
				c.Int[i] = int64(v)
				if c.Type == pb.TensorProto_INT8 {
					c.Int[i] = int64(int8(v))
				}
			}
		default:
			return nil, fmt.Errorf("%d integer values for %d elements", max(len(t.GetInt32Data()), len(t.GetInt64Data())), n)
		}
	}
	return c, nil
}

// attr accessors with ONNX defaults.
func (n *Node) int(name string, def int64) int64 {
	if a, ok := n.Attrs[name]; ok {
		return a.GetI()
	}
	return def
}

func (n *Node) ints(name string) []int64 {
	if a, ok := n.Attrs[name]; ok {
		return a.GetInts()
	}
	return nil
}

func (n *Node) float(name string, def float64) float64 {
	if a, ok := n.Attrs[name]; ok {
		return float64(a.GetF())
	}
	return def
}

func (n *Node) str(name string) string {
	if a, ok := n.Attrs[name]; ok {
		return string(a.GetS())
	}
	return ""
}

// consumers returns the nodes reading tensor name.
func (g *Graph) consumers(name string) []*Node {
	var out []*Node
	for _, n := range g.Nodes {
		if slices.Contains(n.In, name) {
			out = append(out, n)
		}
	}
	return out
}
