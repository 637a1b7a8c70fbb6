//go:build !unix

package main

func processCPU() float64 { return -1 }
