//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package loop

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// newSocket makes a non-blocking, close-on-exec TCP socket. macOS has no
// SOCK_NONBLOCK or SOCK_CLOEXEC, so the flags are set after, under
// syscall.ForkLock as the net package does, lest a child process started
// in between inherit the descriptor.
func newSocket(family int) (int, error) {
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(family, unix.SOCK_STREAM, unix.IPPROTO_TCP)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// acceptNB accepts one connection as a non-blocking, close-on-exec socket
// (macOS has no accept4).
func acceptNB(fd int) (int, error) {
	syscall.ForkLock.RLock()
	nfd, _, err := unix.Accept(fd)
	if err == nil {
		unix.CloseOnExec(nfd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, err
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return -1, err
	}
	return nfd, nil
}

// writevFD writes iov: write(2) for a single buffer, the common case, and
// writev(2) for several where x/sys offers it (writev.go).
func writevFD(fd int, iov [][]byte) (int, error) {
	for {
		var n int
		var err error
		if len(iov) == 1 {
			n, err = unix.Write(fd, iov[0])
		} else {
			n, err = writev(fd, iov)
		}
		if err == unix.EINTR {
			continue
		}
		return n, err
	}
}
