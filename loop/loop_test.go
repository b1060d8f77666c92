package loop

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// echo writes back what it reads.
type echo struct {
	mu     sync.Mutex
	opened int
	on     map[*Loop]int // connections opened per loop
	closed []error
}

func (e *echo) OnOpen(c *Conn) {
	e.mu.Lock()
	e.opened++
	if e.on == nil {
		e.on = map[*Loop]int{}
	}
	e.on[c.Loop()]++
	e.mu.Unlock()
}
func (e *echo) OnData(c *Conn, data []byte) { _, _ = c.Write(data) }
func (e *echo) OnClose(c *Conn, err error) {
	e.mu.Lock()
	e.closed = append(e.closed, err)
	e.mu.Unlock()
}

// running starts l in a goroutine and returns a function that stops it
// and waits.
func running(t *testing.T, l *Loop) func() {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- l.Run(context.Background()) }()
	return func() {
		l.Stop()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// dial connects to ln and closes the connection when the test ends.
func dial(t *testing.T, ln *Listener) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newLoop(t *testing.T, opts ...Option) *Loop {
	t.Helper()
	l, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// modes runs a test with a loop of each kind: parked in Go's netpoller
// (the default) and on a locked OS thread blocking in epoll_wait.
func modes(t *testing.T, test func(t *testing.T, opts ...Option)) {
	t.Run("netpoller", func(t *testing.T) { test(t) })
	t.Run("locked", func(t *testing.T) { test(t, WithLockedThread()) })
}

func TestEchoOverLoopback(t *testing.T) { modes(t, echoOverLoopback) }

func echoOverLoopback(t *testing.T, opts ...Option) {
	l := newLoop(t, append(opts, WithName("echo"))...)
	h := &echo{}
	ln, err := l.Listen("127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	stop := running(t, l)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			r := bufio.NewReader(c)
			for j := range 50 {
				msg := []byte{byte('a' + i%26), byte('0' + j%10), '\n'}
				if _, err := c.Write(msg); err != nil {
					t.Error(err)
					return
				}
				line, err := r.ReadBytes('\n')
				if err != nil || string(line) != string(msg) {
					t.Errorf("echo %q: %q %v", msg, line, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	stop()
	m := l.Metrics()
	if m.Accepted != 20 || m.BytesIn != 20*50*3 || m.BytesOut != m.BytesIn || m.OpenConns != 0 {
		t.Fatalf("metrics %+v", m)
	}
	if h.opened != 20 || len(h.closed) != 20 {
		t.Fatalf("opened %d closed %d", h.opened, len(h.closed))
	}
}

func TestCallSoonPostAndTimers(t *testing.T) { modes(t, callSoonPostAndTimers) }

func callSoonPostAndTimers(t *testing.T, opts ...Option) {
	l := newLoop(t, opts...)
	var order []string
	done := make(chan struct{})
	l.CallSoon(func() {
		order = append(order, "soon")
		l.CallLater(20*time.Millisecond, func() { order = append(order, "later-20") })
		t1 := l.CallLater(10*time.Millisecond, func() { order = append(order, "cancelled") })
		t1.Cancel()
		l.CallLater(30*time.Millisecond, func() { order = append(order, "later-30"); close(done) })
		l.CallSoon(func() { order = append(order, "soon-from-soon") })
	})
	stop := running(t, l)
	if err := l.Post(func() { order = append(order, "posted") }); err != nil {
		t.Fatal(err)
	}
	<-done
	stop()
	want := []string{"soon", "soon-from-soon", "posted", "later-20", "later-30"}
	if len(order) != len(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] && !(i <= 2 && (order[i] == "posted" || order[i] == "soon-from-soon")) {
			t.Fatalf("order %v, want %v", order, want)
		}
	}
	if err := l.Post(func() {}); !errors.Is(err, ErrLoopClosed) {
		t.Fatalf("Post after stop: %v", err)
	}
}

// Many connections, each with one message in flight: the loop goes idle
// and wakes thousands of times, and a lost wake-up shows as a client that
// waits for its echo past the deadline.
func TestNoLostWakeups(t *testing.T) { modes(t, noLostWakeups) }

func noLostWakeups(t *testing.T, opts ...Option) {
	l := newLoop(t, opts...)
	ln, err := l.Listen("127.0.0.1:0", &echo{})
	if err != nil {
		t.Fatal(err)
	}
	stop := running(t, l)
	defer stop()
	deadline := time.Now().Add(20 * time.Second)
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			_ = c.SetDeadline(deadline)
			buf := make([]byte, 8)
			for range 100 {
				if _, err := c.Write(buf); err != nil {
					t.Error(err)
					return
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					t.Errorf("no echo: %v (a lost wake-up?)", err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
