package cuda

import "testing"

func TestSliceAddressing(t *testing.T) {
	a := &allocation{ptr: 0x1000, n: 100}
	root := &devBuf{a: a, n: 100, root: true}
	s := root.Slice(10, 50).(*devBuf)
	ss := s.Slice(5, 20).(*devBuf)
	if s.addr() != 0x1000+40 || ss.addr() != 0x1000+60 || ss.Len() != 20 || ss.root {
		t.Fatalf("views: %x %x %d", s.addr(), ss.addr(), ss.Len())
	}
	for _, c := range [][2]int{{-1, 1}, {0, 101}, {90, 11}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Slice(%d, %d) did not panic", c[0], c[1])
				}
			}()
			root.Slice(c[0], c[1])
		}()
	}
	a.freed = true
	defer func() {
		if recover() == nil {
			t.Error("use after free did not panic")
		}
	}()
	s.addr()
}

// A write to any view overlapping a shadow's range makes it stale; writes
// elsewhere in the same allocation leave it valid.
func TestShadowInvalidation(t *testing.T) {
	a := &allocation{ptr: 0x1000, n: 1000}
	root := &devBuf{a: a, n: 1000, root: true}
	w1 := root.Slice(100, 200).(*devBuf) // [100, 300)
	w2 := root.Slice(300, 100).(*devBuf) // [300, 400)
	s1 := &shadow{off: 100, n: 200, valid: true}
	s2 := &shadow{off: 300, n: 100, valid: true}
	a.shadows = []*shadow{s1, s2}

	if w1.shadowOf() != s1 || w2.shadowOf() != s2 || root.Slice(100, 199).(*devBuf).shadowOf() != nil {
		t.Fatal("shadow lookup")
	}
	root.Slice(0, 100).(*devBuf).written() // adjacent, not overlapping
	root.Slice(400, 600).(*devBuf).written()
	if !s1.valid || !s2.valid {
		t.Fatal("non-overlapping write invalidated a shadow")
	}
	root.Slice(299, 1).(*devBuf).written() // last element of w1
	if s1.valid || !s2.valid {
		t.Fatalf("write of element 299: s1 %v s2 %v", s1.valid, s2.valid)
	}
	s1.valid = true
	root.written() // the whole allocation (e.g. Upload of a checkpoint)
	if s1.valid || s2.valid {
		t.Fatal("whole-buffer write left a shadow valid")
	}
}
