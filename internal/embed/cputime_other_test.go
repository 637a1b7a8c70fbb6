//go:build !unix

package embed

func processCPU() float64 { return -1 }
