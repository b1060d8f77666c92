//go:build linux

package loop

import "golang.org/x/sys/unix"

// newSocket makes a non-blocking, close-on-exec TCP socket.
func newSocket(family int) (int, error) {
	return unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
}

// acceptNB accepts one connection as a non-blocking, close-on-exec socket.
func acceptNB(fd int) (int, error) {
	nfd, _, err := unix.Accept4(fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	return nfd, err
}

// writevFD writes iov with one system call: write(2) for a single buffer,
// the common case, writev(2) for several.
func writevFD(fd int, iov [][]byte) (int, error) {
	for {
		var n int
		var err error
		if len(iov) == 1 {
			n, err = unix.Write(fd, iov[0])
		} else {
			n, err = unix.Writev(fd, iov)
		}
		if err == unix.EINTR {
			continue
		}
		return n, err
	}
}
