package cuda

// Options configures a CUDA backend.
type Options struct {
	// BF16 selects bf16 matrix-product inputs with fp32 accumulation and fp32
	// master weights. False (the default) keeps every product in IEEE fp32.
	BF16 bool
	// NoWeightCache disables the bf16 shadow copies of Linear weights in BF16
	// mode (each product then converts its weight afresh): less memory, a
	// little more time.
	NoWeightCache bool
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
