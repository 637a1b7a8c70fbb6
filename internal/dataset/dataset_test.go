package dataset

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	ok := []Row{{ImageID: "a", Split: Train, ImagePath: "/x/a.jpg", Captions: []string{"c"}}}
	if err := Validate(ok); err != nil {
		t.Fatal(err)
	}
	for want, rows := range map[string][]Row{
		"no rows":                   nil,
		"duplicates row":            {ok[0], ok[0]},
		"no captions":               {{ImageID: "a", Split: Train, ImagePath: "/a"}},
		"is empty":                  {{ImageID: "a", Split: Train, ImagePath: "/a", Captions: []string{" "}}},
		"empty split":               {{ImageID: "a", ImagePath: "/a", Captions: []string{"c"}}},
		"empty image_id":            {{Split: Train, ImagePath: "/a", Captions: []string{"c"}}},
		"no image":                  {{ImageID: "a", Split: Train, Captions: []string{"c"}}},
		"row 0 (a): no image bytes": {ok[0], {ImageID: "b", Split: Train, ImageBytes: []byte("x"), Captions: []string{"c"}}},
	} {
		if err := Validate(rows); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q, got %v", want, err)
		}
	}
}

func TestFormatCounts(t *testing.T) {
	got := FormatCounts(map[string]int{"test": 1, "dev": 4, "train": 29000, "val": 1014, "extra": 2})
	if got != "train=29000 val=1014 test=1 dev=4 extra=2" {
		t.Fatal(got)
	}
}
