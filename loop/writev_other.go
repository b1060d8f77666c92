//go:build dragonfly || freebsd || netbsd

package loop

import "golang.org/x/sys/unix"

// writev writes the buffers one write(2) at a time: x/sys has no writev for
// these systems. It stops at the first short write, as writev would.
func writev(fd int, iov [][]byte) (int, error) {
	total := 0
	for _, b := range iov {
		n, err := unix.Write(fd, b)
		if n > 0 {
			total += n
		}
		if err != nil {
			if total > 0 {
				return total, nil
			}
			return total, err
		}
		if n < len(b) {
			break
		}
	}
	return total, nil
}
