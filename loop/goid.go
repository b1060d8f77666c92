package loop

import (
	"bytes"
	"runtime"
	"strconv"
)

// goroutineID returns the calling goroutine's ID, read from the header of
// its stack trace ("goroutine 42 [running]:"). Go offers no cheaper way;
// only debug mode's wrong-goroutine check asks, which is why it may be
// slow.
func goroutineID() int64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b, _ = bytes.CutPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseInt(string(b), 10, 64)
	return id
}
