//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package loop

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// poller is the loop's readiness source: kqueue on macOS and the BSDs,
// with a pipe to wake a loop blocked in kevent from another goroutine (a
// pipe rather than EVFILT_USER, which OpenBSD lacks). Read and write
// interest are two filters per descriptor. A filter is added the first
// time it is wanted (never before: a write filter on a descriptor that
// cannot be written, such as a pipe's read end, may be refused), then
// enabled and disabled, so a change is one kevent call.
type poller struct {
	kq     int
	wakeR  int
	wakeW  int
	events []unix.Kevent_t
	added  map[int]uint8 // fd → filters added: addedRead, addedWrite
}

const (
	addedRead uint8 = 1 << iota
	addedWrite
)

// newPoller makes the kqueue. An unlocked loop blocks in kevent as a locked
// one does (park is not used here): the netpoller route that the epoll
// poller takes would need a machine to test it on.
func newPoller(bool) (*poller, error) {
	kq, err := unix.Kqueue()
	if err != nil {
		return nil, err
	}
	unix.CloseOnExec(kq)
	var fds [2]int
	syscall.ForkLock.RLock()
	err = unix.Pipe(fds[:])
	if err == nil {
		unix.CloseOnExec(fds[0])
		unix.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		unix.Close(kq)
		return nil, err
	}
	p := &poller{kq: kq, wakeR: fds[0], wakeW: fds[1], events: make([]unix.Kevent_t, 256), added: map[int]uint8{}}
	for _, fd := range fds {
		if err := unix.SetNonblock(fd, true); err != nil {
			p.close()
			return nil, err
		}
	}
	var ch [1]unix.Kevent_t
	unix.SetKevent(&ch[0], p.wakeR, unix.EVFILT_READ, unix.EV_ADD)
	if _, err := unix.Kevent(kq, ch[:], nil, nil); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// change makes read and write interest in fd what is asked.
func (p *poller) change(fd int, read, write bool) error {
	var ch [2]unix.Kevent_t
	k := 0
	have := p.added[fd]
	set := func(filter int, bit uint8, on bool) {
		switch {
		case on && have&bit == 0:
			unix.SetKevent(&ch[k], fd, filter, unix.EV_ADD|unix.EV_ENABLE)
		case on:
			unix.SetKevent(&ch[k], fd, filter, unix.EV_ENABLE)
		case have&bit != 0:
			unix.SetKevent(&ch[k], fd, filter, unix.EV_DISABLE)
		default:
			return // never added, not wanted
		}
		k++
		if on {
			have |= bit
		}
	}
	set(unix.EVFILT_READ, addedRead, read)
	set(unix.EVFILT_WRITE, addedWrite, write)
	if k == 0 {
		p.added[fd] = have
		return nil
	}
	if _, err := unix.Kevent(p.kq, ch[:k], nil, nil); err != nil {
		return err
	}
	p.added[fd] = have
	return nil
}

// add starts watching fd; modify changes what for; remove stops.
func (p *poller) add(fd int, read, write bool) error    { return p.change(fd, read, write) }
func (p *poller) modify(fd int, read, write bool) error { return p.change(fd, read, write) }

func (p *poller) remove(fd int) error {
	have, ok := p.added[fd]
	if !ok {
		return nil
	}
	delete(p.added, fd)
	var ch [2]unix.Kevent_t
	k := 0
	if have&addedRead != 0 {
		unix.SetKevent(&ch[k], fd, unix.EVFILT_READ, unix.EV_DELETE)
		k++
	}
	if have&addedWrite != 0 {
		unix.SetKevent(&ch[k], fd, unix.EVFILT_WRITE, unix.EV_DELETE)
		k++
	}
	if k == 0 {
		return nil
	}
	if _, err := unix.Kevent(p.kq, ch[:k], nil, nil); err != nil && err != unix.ENOENT && err != unix.EBADF {
		return err
	}
	return nil
}

// wait blocks for at most timeoutMs (-1: no limit) and calls f for each
// ready filter: kqueue reports reading and writing as separate events, so
// a descriptor may come twice in one call. The wake pipe is drained, not
// reported.
func (p *poller) wait(timeoutMs int, woke func(), f func(fd int, readable, writable, hangup bool)) error {
	var ts *unix.Timespec
	if timeoutMs >= 0 {
		t := unix.NsecToTimespec(int64(timeoutMs) * 1e6)
		ts = &t
	}
	n, err := unix.Kevent(p.kq, nil, p.events, ts)
	if err == unix.EINTR {
		return nil
	}
	if err != nil {
		return err
	}
	woke() // the wait ends here; what follows is the loop's work
	for i := range n {
		ev := &p.events[i]
		fd := int(ev.Ident)
		if fd == p.wakeR {
			var buf [64]byte
			for {
				if n, _ := unix.Read(p.wakeR, buf[:]); n <= 0 {
					break
				}
			}
			continue
		}
		hangup := ev.Flags&(unix.EV_EOF|unix.EV_ERROR) != 0
		f(fd, ev.Filter == unix.EVFILT_READ, ev.Filter == unix.EVFILT_WRITE, hangup)
	}
	if n == len(p.events) && n < 1<<14 {
		p.events = make([]unix.Kevent_t, 2*n) // a busy loop: take more per call
	}
	return nil
}

// wake makes a blocked wait return.
func (p *poller) wake() {
	_, _ = unix.Write(p.wakeW, []byte{1})
}

func (p *poller) close() {
	unix.Close(p.wakeR)
	unix.Close(p.wakeW)
	unix.Close(p.kq)
}
