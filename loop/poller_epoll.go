//go:build linux

package loop

import (
	"golang.org/x/sys/unix"
)

// poller is the loop's readiness source: epoll on Linux, with an eventfd
// to wake a loop blocked in epoll_wait from another goroutine.
type poller struct {
	epfd   int
	wakefd int
	events []unix.EpollEvent
}

func newPoller() (*poller, error) {
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
	return p, nil
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
func (p *poller) wait(timeoutMs int, f func(fd int, readable, writable, hangup bool)) error {
	n, err := unix.EpollWait(p.epfd, p.events, timeoutMs)
	if err == unix.EINTR {
		return nil
	}
	if err != nil {
		return err
	}
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
	unix.Close(p.epfd)
}
