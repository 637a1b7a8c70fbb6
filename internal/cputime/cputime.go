// Package cputime reads the CPU time this process has used. Benchmarks
// report rates per CPU-second next to wall-clock rates: on a shared machine
// the former measures the code, the latter also its neighbours.
package cputime
