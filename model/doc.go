// Package model defines zkoracle's quantized network format (the IR) and its
// integer reference executor, the ground truth every circuit reproduces bit
// for bit.
//
// # File format (format "zkoracle.model", version 1)
//
// A model is one JSON object:
//
//	{"format": "zkoracle.model", "version": 1, "name": "mnist-mlp",
//	 "input":  {"name": "x", "dtype": "int8", "shape": [1,28,28], "scale": 0.0039, "zero_point": -128},
//	 "ops":    [{"op": "flatten", "in": ["x"], "out": {...}}, ...],
//	 "output": "logits"}
//
// Ops are listed in execution order; each names its input tensors and
// declares its output tensor (name, dtype, shape, scale, zero point). Tensors
// are int8 or int32; shapes are row major, images CHW. Weights are int8 and
// stored base64; biases are int32; requantization scales are an integer
// multiplier M and a right shift s, one pair per tensor or per channel
// (channel = axis 0 of the tensor). Weights are symmetric (zero point 0).
// Scale and zero point describe the real value each integer stands for,
// real = scale * (q - zero_point); execution never reads a scale.
//
// Decode rejects unknown fields, a wrong format or version, dangling or
// duplicate tensor names, parameter arrays of the wrong length, declared
// shapes that disagree with the inferred ones, and any tensor whose static
// bound (interval analysis from the int8 input range) could leave int32; every
// error names the op index, kind and output tensor.
//
// A model's ID is the SHA-256 of its canonical encoding (Encode: compact JSON
// of the decoded model, fields in declaration order), so reformatting a file
// does not change its ID, and any change to a weight does.
//
// # Integer semantics
//
// All arithmetic is exact integer arithmetic on int64 (no wrap-around: Decode
// proves every intermediate fits). With zx the input's zero point:
//
//   - dense: x is 1-D [K]; out int32 [N], out[n] = bias[n] + sum_k W[n][k]*(x[k]-zx).
//   - conv2d: x is [C,H,W]; W is [Co][C][kh][kw]; stride S, zero padding P
//     (padded cells hold zx, i.e. real zero); out int32 [Co,Ho,Wo] with
//     Ho = (H+2P-kh)/S+1, out = bias[co] + sum W*(x-zx).
//   - requantize: x int8 or int32 -> int8,
//     out = clamp(floor(((x-zx)*M_c + 2^(s_c-1)) / 2^s_c) + zp_out, min, max):
//     the rescale rounds half up (towards +inf: -2.5 -> -2, 2.5 -> 3), then
//     the zero point is added, then the result is clamped to [min, max], a
//     sub-range of [-128, 127]. A fused ReLU is min = zp_out.
//   - relu: out = max(x, zx), same type, scale and zero point.
//   - maxpool: k x k window, stride S, no padding; out = window maximum.
//   - avgpool: k x k window, stride S, no padding; out int32 = window SUM.
//     The 1/k^2 is carried by the output scale (scale_in/k^2) and zero point
//     (k^2*zx), so the next requantize absorbs it and nothing is rounded.
//   - add: out int32 = c0*(a-za) + c1*(b-zb), integer coefficients c0, c1.
//   - flatten: reshape to 1-D; values, scale and zero point unchanged.
//   - lookup: int8 -> int8, out = table[x+128] (sigmoid, tanh, ... tabulated).
package model
