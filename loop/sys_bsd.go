//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package loop

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// newSocket makes a non-blocking, close-on-exec TCP socket.
func newSocket(family int) (int, error) {
	return nonblockCloexec(func() (int, error) {
		return unix.Socket(family, unix.SOCK_STREAM, unix.IPPROTO_TCP)
	})
}

// acceptNB accepts one connection as a non-blocking, close-on-exec socket
// (macOS has no accept4).
func acceptNB(fd int) (int, error) {
	return nonblockCloexec(func() (int, error) {
		nfd, _, err := unix.Accept(fd)
		return nfd, err
	})
}

// nonblockCloexec makes a descriptor with open and sets it close-on-exec
// and non-blocking. macOS has no SOCK_NONBLOCK, SOCK_CLOEXEC or accept4,
// so the flags are set after, with open and the close-on-exec flag under
// syscall.ForkLock as the net package does, lest a child process started
// in between inherit the descriptor.
func nonblockCloexec(open func() (int, error)) (int, error) {
	syscall.ForkLock.RLock()
	fd, err := open()
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
