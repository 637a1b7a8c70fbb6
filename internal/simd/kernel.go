package simd

import "fmt"

// Kernel is a GEMM micro-kernel: it computes one MR×NR tile of C from
// packed panels, with its accumulators in registers. Every lane
// accumulates a[p]·b[p] in p order from zero and only then meets C, so a
// product is bit-identical wherever in a tile it falls, and Row reproduces
// any of a tile's rows.
type Kernel struct {
	Name   string // for logs and benchmarks: "avx512-12x32"
	Level  Level
	MR, NR int
	// Tile sets (accumulate false) or adds to (true) c[i*ldc+j] the sum
	// over p < kc of a[p*MR+i]·b[p*NR+j], for i < MR, j < NR: a and b are
	// packed panels (see PackPanels).
	Tile func(kc int, a, b, c []float32, ldc int, accumulate bool)
	// Short, where ShortStep > 0, is Tile for the first m rows only (m a
	// multiple of ShortStep below MR) from an A panel packed m wide: the
	// lanes Tile computes for those rows, bit for bit, at m rows' cost
	// (a batch's last few rows need not pay for a full panel).
	Short     func(m, kc int, a, b, c []float32, ldc int, accumulate bool)
	ShortStep int
	// Row sets out[j] to the sum over p < kc of x[p]·b[p*NR+j] for one
	// contiguous row x, bit for bit what Tile computes for that row.
	Row func(kc int, x, b, out []float32)
}

var goKernel = Kernel{Name: "go-4x4", Level: Go, MR: 4, NR: 4, Tile: tileGo4x4, Row: rowGo4}

// KernelFor returns level l's micro-kernel; l must be available.
func KernelFor(l Level) *Kernel {
	if l < Go || l > best {
		panic(fmt.Sprintf("simd: no %v kernel here", l))
	}
	if l == Go {
		return &goKernel
	}
	return asmKernels[l-1]
}

// tileGo4x4 is the portable micro-kernel: 16 accumulators, which the Go
// compiler keeps in registers; slices are re-sliced to exact lengths so
// the loop body has no bounds checks.
func tileGo4x4(kc int, a, b, c []float32, ldc int, accumulate bool) {
	var c00, c01, c02, c03 float32
	var c10, c11, c12, c13 float32
	var c20, c21, c22, c23 float32
	var c30, c31, c32, c33 float32
	a = a[:4*kc]
	b = b[:4*kc]
	for p := 0; p < len(a) && p < len(b); p += 4 {
		aa := a[p : p+4 : p+4]
		bb := b[p : p+4 : p+4]
		b0, b1, b2, b3 := bb[0], bb[1], bb[2], bb[3]
		a0 := aa[0]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		a1 := aa[1]
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		a2 := aa[2]
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		a3 := aa[3]
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	store4(c[0:4:4], accumulate, c00, c01, c02, c03)
	store4(c[ldc:ldc+4:ldc+4], accumulate, c10, c11, c12, c13)
	store4(c[2*ldc:2*ldc+4:2*ldc+4], accumulate, c20, c21, c22, c23)
	store4(c[3*ldc:3*ldc+4:3*ldc+4], accumulate, c30, c31, c32, c33)
}

// store4 adds v0..v3 to r[0:4], or sets them.
func store4(r []float32, accumulate bool, v0, v1, v2, v3 float32) {
	r = r[:4]
	if accumulate {
		r[0] += v0
		r[1] += v1
		r[2] += v2
		r[3] += v3
		return
	}
	r[0], r[1], r[2], r[3] = v0, v1, v2, v3
}

// rowGo4 is tileGo4x4's row: the same operations on the same values.
func rowGo4(kc int, x, b, out []float32) {
	var o0, o1, o2, o3 float32
	x = x[:kc]
	b = b[:4*kc]
	for p, xp := range x {
		bb := b[4*p : 4*p+4 : 4*p+4]
		o0 += xp * bb[0]
		o1 += xp * bb[1]
		o2 += xp * bb[2]
		o3 += xp * bb[3]
	}
	out = out[:4]
	out[0], out[1], out[2], out[3] = o0, o1, o2, o3
}
