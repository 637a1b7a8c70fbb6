//go:build !unix

package imageproc

func processCPU() float64 { return -1 }
