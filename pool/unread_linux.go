package pool

import (
	"os"

	"golang.org/x/sys/unix"
)

// unread returns how many bytes wait in the pipe that f writes to, unread
// by the other end (FIONREAD works on either end of a Linux pipe); 0 if it
// cannot tell.
func unread(f *os.File) int {
	n, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCINQ)
	if err != nil {
		return 0
	}
	return n
}
