package dataset

import (
	"slices"
	"testing"
)

func TestFractionsDraw(t *testing.T) {
	f := Fractions{Val: 0.2, Test: 0.1, Seed: 3}
	a := f.Draw(50)
	count := map[string]int{}
	for _, s := range a {
		count[s]++
	}
	if count[Train] != 35 || count[Val] != 10 || count[Test] != 5 {
		t.Fatalf("counts %v, want train=35 val=10 test=5", count)
	}
	if !slices.Equal(a, f.Draw(50)) {
		t.Fatal("same fractions and seed drew differently")
	}
	f.Seed = 4
	if slices.Equal(a, f.Draw(50)) {
		t.Fatal("another seed drew the same")
	}
	// Counts round: 0.45 of one image is none.
	if got := (Fractions{Val: 0.45, Test: 0.45}).Draw(1); got[0] != Train {
		t.Fatalf("got %v", got)
	}
	if (Fractions{Val: 0.5, Test: 0.5}).Check() == nil || (Fractions{Val: -0.1}).Check() == nil || (Fractions{Val: 0.3, Test: 0.2}).Check() != nil {
		t.Fatal("Check")
	}
}
