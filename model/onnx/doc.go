// Package onnx imports ONNX models (PyTorch, TensorFlow via tf2onnx) into
// zkoracle's quantized IR.
//
// Parse reads the protobuf (gonnx's generated types) and refuses, naming
// the node and its place, any op outside Supported. Two paths follow:
//
//   - Float graphs: Lower folds BatchNormalization into the Conv or Gemm
//     before it, merges MatMul with a following constant Add, drops
//     Identity and Dropout and turns Reshape-to-flat into Flatten, giving a
//     Net that runs in float64 (the calibration and agreement reference).
//     Quantize then calibrates every activation on sample inputs (min/max
//     or a percentile) and emits the IR: int8 per-channel symmetric weights,
//     int32 biases, asymmetric int8 activations, ReLU/Clip fused into the
//     requantize clamp, exact average pooling, Sigmoid/Tanh as tables.
//   - QDQ graphs (onnxruntime static quantization): ImportQDQ keeps the
//     graph's own scales and zero points and the original int8 weights,
//     turning float scales into the IR's integer multiplier and shift.
//
// Both emit through one code path, parameterized by where the quantization
// parameters come from. The Report lists each activation's range, scale,
// zero point and clipped calibration values; Agreement measures the int8
// model's top-1 agreement with the float one.
//
// Limits: batch 1, one input and one output, square kernels, symmetric
// padding, dilation 1, group 1, no broadcasting Add, weights compiled into
// the circuit as constants.
package onnx
