//go:build linux

package bench

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestGoEpollChild is BenchmarkServeWrk's go-epoll row, in a child
// process that serves until stdin closes: responder.c written in Go. One
// goroutine on a locked thread blocks in epoll_wait, reads what a
// connection sends, counts the requests by their CRLF CRLF (no other
// parsing) and writes that many fixed answers. It is the floor of a Go server: what the kernel costs plus what
// the Go runtime costs around it (its system monitor thread, syscall entry
// and exit; reads and writes are raw system calls, as loom's are, since
// they do not block), with no event loop, parser or handler of loom's.
func TestGoEpollChild(t *testing.T) {
	if os.Getenv("LOOM_BENCH_GOEPOLL") == "" {
		t.Skip("runs only as a benchmark's child process")
	}
	runtime.LockOSThread()
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	_ = unix.SetsockoptInt(ln, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(ln, 4096); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(ln)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("addr 127.0.0.1:%d\n", sa.(*unix.SockaddrInet4).Port)
	go func() {
		// The benchmark closes stdin to stop the server, as for the
		// net/http child.
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, ln, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(ln)}); err != nil {
		t.Fatal(err)
	}
	const answer = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
	var out []byte
	for range 64 {
		out = append(out, answer...)
	}
	buf := make([]byte, 64<<10)
	matched := make(map[int32]int) // how much of CRLF CRLF a connection's last read ended in
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(ep, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range events[:n] {
			if ev.Fd == int32(ln) {
				for {
					fd, _, err := unix.Accept4(ln, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
					if err != nil {
						break
					}
					_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
					_ = unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)})
					matched[int32(fd)] = 0
				}
				continue
			}
			r, err := rawRead(int(ev.Fd), buf)
			if err == unix.EAGAIN {
				continue
			}
			if r <= 0 {
				unix.Close(int(ev.Fd))
				delete(matched, ev.Fd)
				continue
			}
			reqs, m := 0, matched[ev.Fd]
			for _, c := range buf[:r] {
				switch {
				case c == "\r\n\r\n"[m]:
					m++
				case c == '\r':
					m = 1
				default:
					m = 0
				}
				if m == 4 {
					reqs, m = reqs+1, 0
				}
			}
			matched[ev.Fd] = m
			for reqs > 0 {
				batch := min(reqs, 64)
				if _, err := rawWrite(int(ev.Fd), out[:batch*len(answer)]); err != nil {
					break
				}
				reqs -= batch
			}
		}
	}
}

// rawRead and rawWrite are read(2) and write(2) without the scheduler's
// syscall entry and exit: the descriptors are non-blocking.
func rawRead(fd int, p []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

func rawWrite(fd int, p []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}
