package bpe

import (
	"math/rand/v2"
	"strings"
)

// flickrLike returns n English captions in the style of Flickr30k (who does
// what where, with colours, counts, clothing and some punctuation),
// deterministic from seed.
func flickrLike(n int, seed uint64) []string {
	r := rand.New(rand.NewPCG(seed, 1))
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }
	subjects := []string{"man", "woman", "young boy", "little girl", "dog", "group of people", "child",
		"older man", "teenager", "brown dog", "two men", "three children", "crowd", "couple", "worker",
		"skier", "biker", "football player", "musician", "toddler", "black and white dog", "lady"}
	colours := []string{"red", "blue", "green", "yellow", "black", "white", "orange", "pink", "purple", "gray"}
	clothes := []string{"shirt", "jacket", "hat", "dress", "helmet", "coat", "sweater", "uniform", "shorts", "t-shirt"}
	verbs := []string{"is walking", "is running", "is sitting", "is standing", "are playing", "is jumping",
		"is riding a bike", "is climbing a rock", "is throwing a ball", "is looking at something",
		"is holding a sign", "is eating", "is swimming", "is dancing", "is waiting"}
	places := []string{"on the beach", "in the park", "on a busy street", "in front of a building",
		"near the water", "in the snow", "on a grassy field", "at a concert", "in a kitchen",
		"down the sidewalk", "across the road", "under a tree", "by the lake", "in the city"}
	tails := []string{".", ".", " .", "", "!", " while others watch.", ", smiling.", " at night.", " on a sunny day."}
	out := make([]string, n)
	for i := range out {
		var b strings.Builder
		if r.IntN(2) == 0 {
			b.WriteString("A ")
		} else {
			b.WriteString("The ")
		}
		b.WriteString(pick(subjects))
		if r.IntN(3) == 0 {
			b.WriteString(" in a " + pick(colours) + " " + pick(clothes))
		}
		b.WriteString(" " + pick(verbs) + " " + pick(places))
		if r.IntN(4) == 0 {
			b.WriteString(" with " + pick([]string{"a friend", "their dog", "2 kids", "a bag", "his guitar", "her mother's umbrella"}))
		}
		b.WriteString(pick(tails))
		out[i] = b.String()
	}
	return out
}
