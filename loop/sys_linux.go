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
