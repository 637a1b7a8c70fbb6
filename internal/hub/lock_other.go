//go:build !unix

package hub

// lock is a no-op where flock does not exist: concurrent first downloads of
// one model may then collide (one of them fails).
func lock(path string, waiting func()) (unlock func(), err error) { return func() {}, nil }
