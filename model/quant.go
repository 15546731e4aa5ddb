package model

import "math"

// Quantization helpers shared by everything that makes models (the fixture
// quantizer, the ONNX importer).

// Rescale returns M, s with M/2^s close to r > 0: s is the smallest
// multiple of align for which M has at least precision bits (the circuits
// range-check remainders in limbs of align bits).
func Rescale(r float64, precision, align int) (int64, int) {
	s := align
	for r*math.Exp2(float64(s)) < math.Exp2(float64(precision-1)) && s+align <= MaxShift {
		s += align
	}
	m := int64(math.Round(r * math.Exp2(float64(s))))
	return max(min(m, MaxMultiplier), 1), s
}

// QuantizeSymmetric maps float weights [co][...] to symmetric int8 in
// [-127, 127], per channel or (perTensor) with one scale, and returns the
// int8 weights and each channel's scale (an all-zero channel gets 1/127).
func QuantizeSymmetric(w []float64, co int, perTensor bool) (Int8s, []float64) {
	per := len(w) / co
	scales := make([]float64, co)
	var all float64
	for c := range co {
		for _, v := range w[c*per : (c+1)*per] {
			scales[c] = max(scales[c], math.Abs(v))
		}
		all = max(all, scales[c])
	}
	q := make(Int8s, len(w))
	for c := range co {
		s := scales[c]
		if perTensor {
			s = all
		}
		if s == 0 {
			s = 1
		}
		s /= 127
		scales[c] = s
		for j, v := range w[c*per : (c+1)*per] {
			q[c*per+j] = int8(max(min(math.Round(v/s), 127), -127))
		}
	}
	return q, scales
}

// AffineInt8 returns the scale and zero point that map [lo, hi] (widened to
// include 0, so that zero is exact) onto [-128, 127].
func AffineInt8(lo, hi float64) (float64, int64) {
	lo, hi = min(lo, 0), max(hi, 0)
	if hi-lo < 1e-12 {
		return 1.0 / 255, -128
	}
	s := (hi - lo) / 255
	zp := int64(math.Round(-128 - lo/s))
	return s, max(min(zp, 127), -128)
}

// QuantizeValue maps a real value to int8 under scale and zero point,
// rounding half away from zero and clamping.
func QuantizeValue(x, scale float64, zp int64) int8 {
	return int8(max(min(math.Round(x/scale)+float64(zp), 127), -128))
}
