// Package cuda is the GPU implementation of backend.Backend (build tag cuda).
//
// It drives the GPU through the CUDA driver API (gorgonia.org/cu): one
// context (the device's primary context, which cuBLAS shares), one stream on
// which every operation is queued in program order, kernels from the PTX in
// package kernels, and matrix products through cuBLAS, which is loaded at run
// time with dlopen (libcublas.so.13, .12 or .11) so that one binary works
// with whatever CUDA version the machine has.
//
// Precision: in fp32 mode every product is IEEE fp32 (cuBLAS with fp32
// compute, TF32 off), so results match the CPU backend within rounding. In
// bf16 mode (Options.BF16) the inputs of matrix products are rounded to bf16
// and accumulated in fp32; everything else (layer norm and softmax
// statistics, optimizer, master weights) stays fp32. The weight operand of
// Linear/LinearBackward is converted once and kept as a bf16 shadow copy
// (buffers.go) until that weight is written again, so frozen base weights
// are converted once per run and trainable ones once per optimizer step.
// Products with an inner or output width of at most 32 (LoRA's rank-r
// products) skip the conversion and run on TF32 tensor cores from the fp32
// buffers: they are memory-bound, and the conversion pass costs more than it
// saves.
//
// Profiling: with CLIPLINE_CUDA_PROFILE=1 when New runs, every operation is
// bracketed by two CUDA events (nested "(gemm)" and "(bf16 convert)" spans
// inside Linear); the events are resolved after the waits the backend makes
// anyway, and Profile returns GPU and host milliseconds and calls per
// operation (profile.go; scripts/gpu/clbench prints them). HostSyncs counts
// the host's waits for the stream in every mode.
//
// Memory comes from a caching pool (pool.go): Free returns a block to the
// pool and a later Alloc of the same size class reuses it without
// cuMemAlloc/cuMemFree, which synchronise the device.
//
// Files without the cuda build tag (this one, blasconst.go, buffers.go,
// geometry.go, options.go, pool.go, profile_report.go and their tests) hold
// the pure-Go logic so that `go test ./internal/backend/cuda/` checks it on
// machines without a GPU or CUDA headers. Importing the tagged part runs
// cuInit at start-up (in gorgonia.org/cu); cuinit.c wraps cuInit so a
// machine without a usable GPU gets an error from New instead of a process
// exit.
package cuda
