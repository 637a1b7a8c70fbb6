package cuda

// Options configures a CUDA backend.
type Options struct {
	// BF16 selects bf16 matrix-product inputs with fp32 accumulation and fp32
	// master weights. False (the default) keeps every product in IEEE fp32.
	BF16 bool
	// BF16Auto (with BF16 false) multiplies the fp32 buffers with cuBLAS's
	// CUBLAS_COMPUTE_32F_FAST_16BF: the library rounds the inputs to bf16
	// (or TF32) itself, so there is no conversion pass and no weight copy.
	BF16Auto bool
	// TF32 (with BF16 false) multiplies fp32 buffers on TF32 tensor cores
	// (CUBLAS_COMPUTE_32F_FAST_TF32): inputs rounded to a 10-bit mantissa.
	TF32 bool
	// NoWeightCache disables the bf16 shadow copies of Linear weights in BF16
	// mode (each product then converts its weight afresh): less memory, a
	// little more time.
	NoWeightCache bool
}

// precisionName is the Name suffix and computeType the cuBLAS compute type
// of the products on fp32 operands.
func (o Options) precisionName() string {
	switch {
	case o.BF16:
		return "bf16"
	case o.BF16Auto:
		return "bf16auto"
	case o.TF32:
		return "tf32"
	}
	return ""
}

// cuBLAS compute types (cublas_api.h; stable since CUDA 11).
const (
	compute32F         = 68 // CUBLAS_COMPUTE_32F: fp32 accumulation, no TF32
	compute32FFast16BF = 75 // CUBLAS_COMPUTE_32F_FAST_16BF
	compute32FFastTF32 = 77 // CUBLAS_COMPUTE_32F_FAST_TF32
)

func (o Options) computeType() int {
	switch {
	case o.BF16Auto:
		return compute32FFast16BF
	case o.TF32:
		return compute32FFastTF32
	}
	return compute32F
}

// MemStats reports the backend's device memory in bytes.
type MemStats struct {
	InUse        int64 // bytes in live buffers (rounded to the pool's size classes)
	Cached       int64 // bytes freed to the pool and kept for reuse
	PeakInUse    int64 // high-water mark of InUse (compare: torch.cuda.max_memory_allocated)
	PeakReserved int64 // high-water mark of InUse+Cached (compare: torch.cuda.max_memory_reserved)
	Allocs       int64 // cuMemAlloc calls
	Reuses       int64 // allocations served from the pool
}
