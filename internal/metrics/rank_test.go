package metrics

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/clipline/clipline/internal/simd"
)

func approx(t *testing.T, name string, got, want float64) {
	t.Helper()
	if !(math.Abs(got-want) <= 1e-4) {
		t.Errorf("%s = %.5f, want %.5f", name, got, want)
	}
}

func flat(vs ...[]float32) []float32 {
	var out []float32
	for _, v := range vs {
		out = append(out, v...)
	}
	return out
}

// Worked by hand (see the comments for each query's ranking).
func TestHandComputedMultiPositive(t *testing.T) {
	caps := [][]string{{"a dog", "red car"}, {"a dog"}, {"a cat"}}
	t2i, i2t := SingleStream(caps)
	in := Input{Dim: 2,
		Images:   flat([]float32{1, 0}, []float32{0, 1}, []float32{0.6, 0.8}),
		Captions: flat([]float32{0, 1}, []float32{1, 0}, []float32{0.6, 0.8}, []float32{1, 0}),
		T2I:      t2i, I2T: i2t}
	res, err := Rank(in, Options{TopK: 5})
	if err != nil {
		t.Fatal(err)
	}
	// t2i. c0 "a dog" (0,1): g1 1, g2 .8, g0 0; relevant g0,g1 at ranks 1,3.
	// c1 "red car" (1,0): g0 first. c2 "a dog" (.6,.8): g2 1, g1 .8, g0 .6;
	// relevant at 2,3. c3 "a cat" (1,0): g0 1, g2 .6; relevant g2 at 2.
	if !slices.Equal(res.T2I.FirstRank, []int32{1, 1, 2, 2}) {
		t.Errorf("t2i first ranks %v", res.T2I.FirstRank)
	}
	l := func(r float64) float64 { return 1 / math.Log2(r+1) }
	idcg2 := l(1) + l(2)
	approx(t, "t2i R1", res.T2I.R1, 0.5)
	approx(t, "t2i R5", res.T2I.R5, 1)
	approx(t, "t2i R10", res.T2I.R10, 1)
	approx(t, "t2i MRR", res.T2I.MRR, (1+1+0.5+0.5)/4)
	approx(t, "t2i NDCG", res.T2I.NDCG10, ((l(1)+l(3))/idcg2+1+(l(2)+l(3))/idcg2+l(2))/4)
	// i2t. g0 (1,0): c1 1, c3 1 (tie: c1 first), c2 .6, c0 0; own c0,c1 at
	// 4,1. g1 (0,1): c0, c2, ...; own c2 at 2. g2 (.6,.8): c2 1, c0 .8,
	// c1 .6, c3 .6 (tie: c1 first); own c3 at 4.
	if !slices.Equal(res.I2T.FirstRank, []int32{1, 2, 4}) {
		t.Errorf("i2t first ranks %v", res.I2T.FirstRank)
	}
	approx(t, "i2t R1", res.I2T.R1, 1.0/3)
	approx(t, "i2t R5", res.I2T.R5, 1)
	approx(t, "i2t MRR", res.I2T.MRR, (1+0.5+0.25)/3)
	approx(t, "i2t NDCG", res.I2T.NDCG10, ((l(1)+l(4))/idcg2+l(2)+l(4))/3)
	approx(t, "rsum", res.RSum(), 0.5+1+1+1.0/3+1+1)
	// Top-k with K larger than the gallery: every image, then padding.
	if got := res.T2I.Top.Items[0:5]; !slices.Equal(got, []int32{1, 2, 0, -1, -1}) {
		t.Errorf("t2i top-5 of c0: %v", got)
	}
	if got := res.I2T.Top.Items[0:5]; !slices.Equal(got, []int32{1, 3, 2, 0, -1}) {
		t.Errorf("i2t top-5 of g0: %v", got)
	}
	if got := res.I2T.Top.Items[10:15]; !slices.Equal(got, []int32{2, 0, 1, 3, -1}) {
		t.Errorf("i2t top-5 of g2: %v", got)
	}
}

func TestTiesFollowRowOrder(t *testing.T) {
	// Identical embeddings everywhere: every ranking is row order.
	caps := [][]string{{"a"}, {"b"}, {"c"}, {"d"}}
	t2i, i2t := SingleStream(caps)
	v := []float32{0.5, 0.5, 0.5, 0.5}
	in := Input{Dim: 4, Images: flat(v, v, v, v), Captions: flat(v, v, v, v), T2I: t2i, I2T: i2t}
	res, err := Rank(in, Options{TopK: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []Direction{res.T2I, res.I2T} {
		if !slices.Equal(d.FirstRank, []int32{1, 2, 3, 4}) {
			t.Errorf("ranks %v, want row order", d.FirstRank)
		}
		approx(t, "R1", d.R1, 0.25)
		approx(t, "MRR", d.MRR, (1+1.0/2+1.0/3+1.0/4)/4)
		if !slices.Equal(d.Top.Items[:2], []int32{0, 1}) {
			t.Errorf("top-2 %v", d.Top.Items[:2])
		}
	}
}

func TestSingleImageAndDuplicateCaptions(t *testing.T) {
	// One image with a caption twice: both copies are relevant, and both are
	// the image's own captions.
	caps := [][]string{{"x", "x", "y"}}
	t2i, i2t := SingleStream(caps)
	if t2i.Len() != 3 || !slices.Equal(t2i.Of(0), []int32{0}) || !slices.Equal(i2t.Of(0), []int32{0, 1, 2}) {
		t.Fatalf("relevance %+v %+v", t2i, i2t)
	}
	in := Input{Dim: 2, Images: []float32{1, 0}, Captions: flat([]float32{1, 0}, []float32{1, 0}, []float32{0, 1}), T2I: t2i, I2T: i2t}
	res, err := Rank(in, Options{})
	if err != nil {
		t.Fatal(err)
	}
	approx(t, "t2i R1", res.T2I.R1, 1)
	approx(t, "t2i NDCG", res.T2I.NDCG10, 1)
	approx(t, "i2t R1", res.I2T.R1, 1)
	approx(t, "i2t NDCG", res.I2T.NDCG10, 1) // all three own captions fill ranks 1-3

	// The same caption text under two images: relevant to both.
	caps = [][]string{{"x"}, {"x"}, {}}
	t2i, i2t = SingleStream(caps)
	if !slices.Equal(t2i.Of(0), []int32{0, 1}) || !slices.Equal(t2i.Of(1), []int32{0, 1}) || len(i2t.Of(2)) != 0 {
		t.Fatalf("relevance %+v %+v", t2i, i2t)
	}
	in = Input{Dim: 2, Images: flat([]float32{0, 1}, []float32{1, 0}, []float32{1, 1}), Captions: flat([]float32{1, 0}, []float32{1, 0}), T2I: t2i, I2T: i2t}
	res, err = Rank(in, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Both captions (1,0): g1 1, g2 1 (tie, g1 first), g0 0; relevant g1, g0 at ranks 1 and 3.
	if !slices.Equal(res.T2I.FirstRank, []int32{1, 1}) {
		t.Errorf("t2i ranks %v", res.T2I.FirstRank)
	}
	l := func(r float64) float64 { return 1 / math.Log2(r+1) }
	approx(t, "t2i NDCG", res.T2I.NDCG10, (l(1)+l(3))/(l(1)+l(2)))
	if res.I2T.NoRelevant != 1 || res.I2T.Queries != 2 {
		t.Errorf("image without captions: %+v", res.I2T)
	}
}

func TestInputErrors(t *testing.T) {
	t2i, i2t := SingleStream([][]string{{"a"}})
	for name, in := range map[string]Input{
		"nan":       {Dim: 1, Images: []float32{float32(math.NaN())}, Captions: []float32{1}, T2I: t2i, I2T: i2t},
		"dim":       {Dim: 2, Images: []float32{1}, Captions: []float32{1}, T2I: t2i, I2T: i2t},
		"relevance": {Dim: 1, Images: []float32{1, 2}, Captions: []float32{1}, T2I: t2i, I2T: i2t},
	} {
		if _, err := Rank(in, Options{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestEmptySides(t *testing.T) {
	t2i, i2t := SingleStream([][]string{{}, {}})
	res, err := Rank(Input{Dim: 2, Images: []float32{1, 0, 0, 1}, T2I: t2i, I2T: i2t}, Options{TopK: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.T2I.Queries != 0 || res.I2T.NoRelevant != 2 || res.RSum() != 0 {
		t.Errorf("no captions: %+v", res)
	}
}

// bruteForce ranks every query against the whole gallery in float64.
func bruteForce(q, g []float32, d int, rel Relevance, k int) (first []int32, r1, r5, r10, mrr, ndcg float64, top [][]int32) {
	nq, ng := len(q)/d, len(g)/d
	var counted int
	for i := range nq {
		sc := make([]float64, ng)
		for j := range ng {
			for x := range d {
				sc[j] += float64(q[i*d+x]) * float64(g[j*d+x])
			}
		}
		order := make([]int32, ng)
		for j := range order {
			order[j] = int32(j)
		}
		slices.SortStableFunc(order, func(a, b int32) int { return cmp.Compare(sc[b], sc[a]) })
		top = append(top, order[:min(k, ng)])
		rank := make([]int, ng)
		for p, j := range order {
			rank[j] = p + 1
		}
		rs := rel.Of(i)
		if len(rs) == 0 {
			first = append(first, 0)
			continue
		}
		counted++
		best := ng + 1
		var dcg, idcg float64
		for x, j := range rs {
			best = min(best, rank[j])
			if rank[j] <= 10 {
				dcg += 1 / math.Log2(float64(rank[j]+1))
			}
			if x < 10 {
				idcg += 1 / math.Log2(float64(x+2))
			}
		}
		first = append(first, int32(best))
		if best <= 1 {
			r1++
		}
		if best <= 5 {
			r5++
		}
		if best <= 10 {
			r10++
		}
		mrr += 1 / float64(best)
		ndcg += dcg / idcg
	}
	c := float64(counted)
	return first, r1 / c, r5 / c, r10 / c, mrr / c, ndcg / c, top
}

func checkAgainstBrute(t *testing.T, in Input, opt Options) {
	t.Helper()
	res, err := Rank(in, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []struct {
		name string
		got  Direction
		q, g []float32
		rel  Relevance
	}{{"t2i", res.T2I, in.Captions, in.Images, in.T2I}, {"i2t", res.I2T, in.Images, in.Captions, in.I2T}} {
		first, r1, r5, r10, mrr, ndcg, top := bruteForce(dir.q, dir.g, in.Dim, dir.rel, opt.TopK)
		if !slices.Equal(dir.got.FirstRank, first) {
			for i := range first {
				if first[i] != dir.got.FirstRank[i] {
					t.Fatalf("%s (kernel %s) query %d: first relevant rank %d, brute force %d", dir.name, res.Kernel, i, dir.got.FirstRank[i], first[i])
				}
			}
		}
		approx(t, dir.name+" R1", dir.got.R1, r1)
		approx(t, dir.name+" R5", dir.got.R5, r5)
		approx(t, dir.name+" R10", dir.got.R10, r10)
		approx(t, dir.name+" MRR", dir.got.MRR, mrr)
		if !(math.Abs(dir.got.NDCG10-ndcg) <= 1e-9) {
			t.Errorf("%s NDCG %.12f, brute force %.12f", dir.name, dir.got.NDCG10, ndcg)
		}
		for i, want := range top {
			got := dir.got.Top.Items[i*opt.TopK : i*opt.TopK+len(want)]
			if !slices.Equal(got, want) {
				t.Fatalf("%s query %d top-%d %v, brute force %v", dir.name, i, opt.TopK, got, want)
			}
		}
	}
}

// randomInput uses small multiples of 1/4 so float32 and float64 scores are
// exact and ties are common: the tie rule is exercised throughout.
func randomInput(rng *rand.Rand, n, d, maxCaps int, vocab int) Input {
	caps := make([][]string, n)
	for i := range caps {
		for range rng.IntN(maxCaps + 1) {
			caps[i] = append(caps[i], string(rune('a'+rng.IntN(vocab))))
		}
	}
	t2i, i2t := SingleStream(caps)
	m := t2i.Len()
	val := func() float32 { return float32(rng.IntN(7)-3) / 4 }
	in := Input{Dim: d, T2I: t2i, I2T: i2t, Images: make([]float32, n*d), Captions: make([]float32, m*d)}
	for i := range in.Images {
		in.Images[i] = val()
	}
	for i := range in.Captions {
		in.Captions[i] = val()
	}
	return in
}

func TestAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	defer func(l simd.Level) { scoreLevel = l }(scoreLevel)
	for _, l := range simd.Available() {
		scoreLevel = l
		t.Run(l.String(), func(t *testing.T) {
			for _, c := range []struct {
				n, d, maxCaps, vocab int
				opt                  Options
			}{
				{1, 3, 2, 3, Options{TopK: 3}},
				{37, 5, 3, 20, Options{TopK: 4, Workers: 3, CaptionBlock: 12, ImageBlock: 32}},
				{150, 9, 6, 400, Options{TopK: 12, Workers: 2, CaptionBlock: 24, ImageBlock: 64}},
				{300, 16, 5, 60, Options{TopK: 1}},
				{70, 33, 5, 1000, Options{TopK: 20, Workers: 1}},
			} {
				in := randomInput(rng, c.n, c.d, c.maxCaps, c.vocab)
				checkAgainstBrute(t, in, c.opt)
			}
		})
	}
}

func TestWithGallery(t *testing.T) {
	// Query rows q0 (id A: "a dog"), q1 (id Z, not in the gallery: "a cat").
	// Gallery: A, B (captions "a cat"), C.
	t2i, i2t := WithGallery([]string{"A", "Z"}, [][]string{{"a dog"}, {"a cat", "unseen"}},
		[]string{"A", "B", "C"}, [][]string{{"x"}, {"a cat"}, nil})
	if !slices.Equal(t2i.Of(0), []int32{0}) || !slices.Equal(t2i.Of(1), []int32{1}) || len(t2i.Of(2)) != 0 {
		t.Errorf("t2i %+v", t2i)
	}
	if !slices.Equal(i2t.Of(0), []int32{0}) || !slices.Equal(i2t.Of(1), []int32{1}) || len(i2t.Of(2)) != 0 {
		t.Errorf("i2t %+v", i2t)
	}
}
