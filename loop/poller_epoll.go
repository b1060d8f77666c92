//go:build linux

package loop

import (
	"errors"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// poller is the loop's readiness source: epoll on Linux, with an eventfd
// to wake a waiting loop from another goroutine.
//
// An unlocked loop does not block in epoll_wait: it polls without
// waiting, and when nothing is ready it waits for its epoll descriptor,
// which is itself pollable, to become readable through Go's netpoller
// (an os.File over it and RawConn.Read), with the next timer as the read
// deadline. The goroutine then parks as a net.Conn reader would.
type poller struct {
	epfd   int
	wakefd int
	events []unix.EpollEvent

	park     *os.File        // epfd in Go's netpoller; nil for a locked loop
	rc       syscall.RawConn // park's
	pollFn   func(uintptr) bool
	n        int // pollFn's results
	err      error
	deadline time.Time // park's read deadline, to set it only when it changes
}

func newPoller(park bool) (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	p := &poller{epfd: epfd, wakefd: wfd, events: make([]unix.EpollEvent, 256)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wfd)}); err != nil {
		p.close()
		return nil, err
	}
	if park {
		// os.NewFile puts a non-blocking descriptor in the netpoller.
		if err := unix.SetNonblock(epfd, true); err != nil {
			p.close()
			return nil, err
		}
		p.park = os.NewFile(uintptr(epfd), "epoll")
		if p.rc, err = p.park.SyscallConn(); err != nil {
			p.close()
			return nil, err
		}
		p.pollFn = p.poll
	}
	return p, nil
}

// poll is RawConn.Read's callback: take what is ready without waiting, and
// say whether that was anything (false: park until epfd is readable).
//
// RawConn.Read calls it once before it first parks, after clearing the
// netpoller's readiness mark, so that events which came since parkWait's
// own poll are not missed; skipping that call loses wake-ups.
func (p *poller) poll(uintptr) bool {
	p.n, p.err = unix.EpollWait(p.epfd, p.events, 0)
	return p.n > 0 || (p.err != nil && p.err != unix.EINTR)
}

// parkWait is epoll_wait for an unlocked loop: see poller. RawConn.Read
// polls once before it parks, so a wait whose deadline is unchanged (the
// common case: no timer due) costs one epoll_wait when events are ready;
// a new deadline is set only if a first poll finds nothing.
func (p *poller) parkWait(timeoutMs int) (int, error) {
	var deadline time.Time
	if timeoutMs > 0 {
		deadline = time.Now().Add(time.Duration(timeoutMs) * time.Millisecond)
	}
	if !deadline.Equal(p.deadline) {
		if p.poll(0) {
			return p.n, p.err
		}
		if err := p.park.SetReadDeadline(deadline); err != nil {
			return 0, err
		}
		p.deadline = deadline
	}
	p.n, p.err = 0, nil
	err := p.rc.Read(p.pollFn)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, err
	}
	return p.n, p.err
}

func interest(read, write bool) uint32 {
	var ev uint32 = unix.EPOLLRDHUP
	if read {
		ev |= unix.EPOLLIN
	}
	if write {
		ev |= unix.EPOLLOUT
	}
	return ev
}

// add starts watching fd; modify changes what for; remove stops.
func (p *poller) add(fd int, read, write bool) error {
	return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: interest(read, write), Fd: int32(fd)})
}

func (p *poller) modify(fd int, read, write bool) error {
	return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, fd, &unix.EpollEvent{Events: interest(read, write), Fd: int32(fd)})
}

func (p *poller) remove(fd int) error {
	return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

// wait blocks for at most timeoutMs (-1: no limit) and calls f for each
// ready descriptor; the wake descriptor is drained, not reported.
func (p *poller) wait(timeoutMs int, woke func(), f func(fd int, readable, writable, hangup bool)) error {
	var n int
	var err error
	if p.park != nil && timeoutMs != 0 {
		n, err = p.parkWait(timeoutMs)
	} else {
		n, err = unix.EpollWait(p.epfd, p.events, timeoutMs)
	}
	if err == unix.EINTR {
		return nil
	}
	if err != nil {
		return err
	}
	woke() // the wait ends here; what follows is the loop's work
	for i := range n {
		ev := p.events[i]
		fd := int(ev.Fd)
		if fd == p.wakefd {
			var buf [8]byte
			_, _ = unix.Read(p.wakefd, buf[:])
			continue
		}
		f(fd, ev.Events&(unix.EPOLLIN|unix.EPOLLPRI) != 0, ev.Events&unix.EPOLLOUT != 0,
			ev.Events&(unix.EPOLLHUP|unix.EPOLLERR|unix.EPOLLRDHUP) != 0)
	}
	if n == len(p.events) && n < 1<<14 {
		p.events = make([]unix.EpollEvent, 2*n) // a busy loop: take more per call
	}
	return nil
}

// wake makes a blocked wait return.
func (p *poller) wake() {
	one := [8]byte{1}
	_, _ = unix.Write(p.wakefd, one[:])
}

func (p *poller) close() {
	unix.Close(p.wakefd)
	if p.park != nil {
		p.park.Close() // and epfd with it
	} else {
		unix.Close(p.epfd)
	}
}
