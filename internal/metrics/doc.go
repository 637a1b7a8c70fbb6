// Package metrics computes retrieval metrics for clipline's rank stage (and
// training's validation): Recall@1/5/10, MRR and NDCG@10, text to image and
// image to text, exactly and without building the score matrix.
//
// Relevance (SingleStream, WithGallery): a caption is relevant to every image
// whose captions hold the same text (multi-positive); an image's relevant
// captions are its own.
//
// Ranking: scores are dot products; higher first; equal scores are ordered by
// gallery row, the lower row first (captions are numbered in row order). So a
// relevant item's rank is 1 + the number of gallery items scoring higher, or
// scoring the same and coming earlier.
//
// Metrics, averaged over queries with at least one relevant item: Recall@K is
// 1 when the best-ranked relevant item is within the top K; MRR is 1/its
// rank; NDCG@10 has binary gains, DCG = sum over relevant items ranked within
// 10 of 1/log2(rank+1), divided by the ideal DCG over min(#relevant, 10)
// items.
//
// Computation (Rank): embeddings are packed into panels and scored block by
// block with internal/simd's GEMM micro-kernels (AVX-512, AVX2+FMA or
// portable Go, as the CPU backend picks), each block of scores serving both
// directions; per query, only counts of items beating its relevant items and
// an optional top-k heap are kept.
//
// Summary is a Result as rank's JSON (and train's metrics.jsonl, and
// report's input) holds it, with its table for people.
package metrics
