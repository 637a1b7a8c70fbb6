package cuda

// Operand codes of the matrix products, with cuBLAS's values (cublas_api.h,
// library_types.h; stable since CUDA 11), shared by the real device and the
// emulator.
const (
	opN = 0 // CUBLAS_OP_N
	opT = 1 // CUBLAS_OP_T

	dtF32  = 0  // CUDA_R_32F
	dtBF16 = 14 // CUDA_R_16BF
)

// ltWorkspace is the device workspace cuBLASLt may use per product.
const ltWorkspace = 32 << 20
