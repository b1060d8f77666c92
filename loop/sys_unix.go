//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package loop

import (
	"errors"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// The socket calls the loop makes, kept here (and the few that differ in
// sys_linux.go and sys_bsd.go) so that the rest of the package is free of
// platform code.

func sockaddr(a *net.TCPAddr) (unix.Sockaddr, int) {
	if ip4 := a.IP.To4(); ip4 != nil || a.IP == nil {
		sa := &unix.SockaddrInet4{Port: a.Port}
		if ip4 != nil {
			copy(sa.Addr[:], ip4)
		}
		return sa, unix.AF_INET
	}
	sa := &unix.SockaddrInet6{Port: a.Port}
	copy(sa.Addr[:], a.IP.To16())
	return sa, unix.AF_INET6
}

func tcpAddr(sa unix.Sockaddr) *net.TCPAddr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: sa.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]), Port: sa.Port}
	}
	return nil
}

// listenTCP makes a non-blocking listening socket on addr.
func listenTCP(addr string, reusePort bool) (int, *net.TCPAddr, error) {
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return -1, nil, err
	}
	sa, family := sockaddr(a)
	fd, err := newSocket(family)
	if err != nil {
		return -1, nil, os.NewSyscallError("socket", err)
	}
	fail := func(call string, err error) (int, *net.TCPAddr, error) {
		unix.Close(fd)
		return -1, nil, os.NewSyscallError(call, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fail("setsockopt", err)
	}
	if reusePort {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return fail("setsockopt", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	if err := unix.Listen(fd, 4096); err != nil {
		return fail("listen", err)
	}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	return fd, tcpAddr(bound), nil
}

// accept takes one connection, non-blocking; EAGAIN when none is waiting.
func accept(fd int) (int, error) {
	nfd, err := acceptNB(fd)
	if err != nil {
		return -1, err
	}
	_ = unix.SetsockoptInt(nfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	return nfd, nil
}

func remoteAddr(fd int) *net.TCPAddr {
	sa, err := unix.Getpeername(fd)
	if err != nil {
		return nil
	}
	return tcpAddr(sa)
}

// dialTCP starts a non-blocking connect; the socket becomes writable when
// it completes, and socketError then says how.
func dialTCP(addr string) (int, error) {
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return -1, err
	}
	sa, family := sockaddr(a)
	fd, err := newSocket(family)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if err := unix.Connect(fd, sa); err != nil && err != unix.EINPROGRESS {
		unix.Close(fd)
		return -1, os.NewSyscallError("connect", err)
	}
	return fd, nil
}

func socketError(fd int) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return os.NewSyscallError("getsockopt", err)
	}
	if v != 0 {
		return os.NewSyscallError("connect", unix.Errno(v))
	}
	return nil
}

func localAddr(fd int) *net.TCPAddr {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil
	}
	return tcpAddr(sa)
}

func readFD(fd int, buf []byte) (int, error) {
	n, err := sysRead(fd, buf)
	if err == unix.EINTR {
		return readFD(fd, buf)
	}
	return n, err
}

// writevFD writes iov with one system call: write(2) for a single buffer,
// the common case, writev(2) for several (writev.go, writev_other.go).
func writevFD(fd int, iov [][]byte) (int, error) {
	for {
		var n int
		var err error
		if len(iov) == 1 {
			n, err = sysWrite(fd, iov[0])
		} else {
			n, err = writev(fd, iov)
		}
		if err == unix.EINTR {
			continue
		}
		return n, err
	}
}

func shutdownWrite(fd int) error { return unix.Shutdown(fd, unix.SHUT_WR) }

func closeFD(fd int) error { return unix.Close(fd) }

// isAgain reports whether err means "not now": the call would block.
func isAgain(err error) bool { return errors.Is(err, unix.EAGAIN) }
