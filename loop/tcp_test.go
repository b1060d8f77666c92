package loop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"loom/internal/registry"
	"loom/pool"
)

// funcs is a Handler made of functions.
type funcs struct {
	open   func(*Conn)
	data   func(*Conn, []byte)
	close  func(*Conn, error)
	pause  func(*Conn)
	resume func(*Conn)
}

func (f *funcs) OnOpen(c *Conn) {
	if f.open != nil {
		f.open(c)
	}
}
func (f *funcs) OnData(c *Conn, b []byte) {
	if f.data != nil {
		f.data(c, b)
	}
}
func (f *funcs) OnClose(c *Conn, err error) {
	if f.close != nil {
		f.close(c, err)
	}
}
func (f *funcs) OnPauseWriting(c *Conn) {
	if f.pause != nil {
		f.pause(c)
	}
}
func (f *funcs) OnResumeWriting(c *Conn) {
	if f.resume != nil {
		f.resume(c)
	}
}

// A producer that honours the watermarks keeps its unsent bytes bounded
// however slowly the peer reads, and resumes once the peer catches up.
func TestWatermarksPauseAndResumeTheProducer(t *testing.T) {
	l := newLoop(t)
	const total = 8 << 20
	block := bytes.Repeat([]byte("x"), 4096)
	var pauses, resumes atomic.Int64
	var maxBuffered atomic.Int64
	var sent int
	var produce func(c *Conn)
	paused := false
	produce = func(c *Conn) {
		for !paused && sent < total {
			n, _ := c.Write(block)
			sent += n
			if b := int64(c.Buffered()); b > maxBuffered.Load() {
				maxBuffered.Store(b)
			}
		}
		if sent >= total {
			c.Close()
		}
	}
	h := &funcs{
		open:   produce,
		pause:  func(c *Conn) { pauses.Add(1); paused = true },
		resume: func(c *Conn) { resumes.Add(1); paused = false; produce(c) },
	}
	ln, err := l.Listen("127.0.0.1:0", h, Watermarks(64<<10, 16<<10))
	if err != nil {
		t.Fatal(err)
	}
	stop := running(t, l)
	defer stop()
	c := dial(t, ln)
	time.Sleep(50 * time.Millisecond) // the client does not read yet
	if pauses.Load() == 0 {
		t.Fatal("the producer was never paused while the peer did not read")
	}
	got, err := io.Copy(io.Discard, c) // now read everything
	if err != nil || got != total {
		t.Fatalf("read %d of %d: %v", got, total, err)
	}
	if resumes.Load() == 0 {
		t.Fatal("never resumed")
	}
	if mb := maxBuffered.Load(); mb > 64<<10+4096 {
		t.Fatalf("buffered %d bytes, above the high watermark plus one write", mb)
	}
}

// Everything written during one turn leaves in one writev.
func TestWritesOfOneTurnAreBatched(t *testing.T) {
	l := newLoop(t)
	h := &funcs{data: func(c *Conn, b []byte) {
		for range 100 {
			_, _ = c.Write([]byte("0123456789"))
		}
	}}
	ln, _ := l.Listen("127.0.0.1:0", h)
	stop := running(t, l)
	defer stop()
	c := dial(t, ln)
	_, _ = c.Write([]byte("go"))
	buf := make([]byte, 1000)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	if w := l.Metrics().WriteCalls; w != 1 {
		t.Fatalf("%d writev calls for 100 writes in one turn, want 1", w)
	}
}

func TestIdleTimeoutClosesQuietConnections(t *testing.T) {
	l := newLoop(t)
	closed := make(chan error, 1)
	ln, _ := l.Listen("127.0.0.1:0", &funcs{close: func(c *Conn, err error) { closed <- err }}, IdleTimeout(50*time.Millisecond))
	stop := running(t, l)
	defer stop()
	c := dial(t, ln)
	if err := <-closed; !errors.Is(err, ErrIdle) {
		t.Fatalf("closed with %v", err)
	}
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client read after idle close: %v", err)
	}
}

// A read deadline closes a connection whose data has not come by then; one
// cleared when the data came does not, however long the connection lives.
func TestReadDeadline(t *testing.T) {
	l := newLoop(t)
	closed := make(chan error, 2)
	h := &funcs{
		open: func(c *Conn) { c.SetReadDeadline(time.Now().Add(300 * time.Millisecond)) },
		data: func(c *Conn, b []byte) {
			c.SetReadDeadline(time.Time{}) // the greeting came: no deadline now
			_, _ = c.Write(b)
		},
		close: func(c *Conn, err error) { closed <- err },
	}
	ln, _ := l.Listen("127.0.0.1:0", h)
	stop := running(t, l)
	defer stop()

	silent := dial(t, ln)
	talker := dial(t, ln)
	if _, err := talker.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if err := <-closed; !errors.Is(err, ErrReadDeadline) {
		t.Fatalf("silent connection closed with %v", err)
	}
	if _, err := silent.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("silent client read: %v", err)
	}
	// Well past the deadline, the connection that spoke in time still echoes.
	time.Sleep(100 * time.Millisecond)
	buf := make([]byte, 4)
	if _, err := talker.Write([]byte("more")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(talker, buf[:2]); err != nil || string(buf[:2]) != "hi" {
		t.Fatalf("first echo %q %v", buf[:2], err)
	}
	if _, err := io.ReadFull(talker, buf); err != nil || string(buf) != "more" {
		t.Fatalf("second echo %q %v", buf, err)
	}
	select {
	case err := <-closed:
		t.Fatalf("the talker was closed too: %v", err)
	default:
	}
}

// A client that sends, half-closes and waits still gets every byte of the
// answer; one that resets mid-stream does not disturb the loop.
func TestHalfCloseAndResetPeers(t *testing.T) {
	l := newLoop(t)
	h := &echo{}
	ln, _ := l.Listen("127.0.0.1:0", h)
	stop := running(t, l)
	defer stop()

	c := dial(t, ln)
	msg := bytes.Repeat([]byte("half-close "), 10000)
	go func() {
		_, _ = c.Write(msg)
		_ = c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("half-close: got %d of %d bytes, %v", len(got), len(msg), err)
	}

	// Garbage, then a reset (SO_LINGER 0) while the server is writing.
	for range 10 {
		rc := dial(t, ln)
		_, _ = rc.Write(bytes.Repeat([]byte{0xff, 0x00, 0x13}, 50000))
		_ = rc.(*net.TCPConn).SetLinger(0)
		rc.Close()
	}
	// The loop still serves.
	c2 := dial(t, ln)
	_, _ = c2.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c2, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("after resets: %q %v", buf, err)
	}
}

func TestDialFromTheLoop(t *testing.T) {
	srv, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		c, err := srv.Accept()
		if err != nil {
			return
		}
		_, _ = io.Copy(c, c)
		c.Close()
	}()
	l := newLoop(t)
	got := make(chan string, 1)
	var buf []byte
	if err := l.Dial(srv.Addr().String(), &funcs{
		open: func(c *Conn) { _, _ = c.Write([]byte("hello")) },
		data: func(c *Conn, b []byte) {
			buf = append(buf, b...)
			if len(buf) == 5 {
				got <- string(buf)
				c.Close()
			}
		},
	}); err != nil {
		t.Fatal(err)
	}
	// A refused dial ends in OnClose with the error.
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	refused := make(chan error, 1)
	opened := false
	_ = l.Dial(deadAddr, &funcs{open: func(*Conn) { opened = true }, close: func(c *Conn, err error) { refused <- err }})
	stop := running(t, l)
	defer stop()
	if s := <-got; s != "hello" {
		t.Fatal(s)
	}
	if err := <-refused; err == nil || opened {
		t.Fatalf("refused dial: %v, opened %v", err, opened)
	}
}

func TestReadersAndWritersOnAPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	l := newLoop(t)
	got := make(chan string, 1)
	rfd := int(r.Fd())
	if err := l.AddReader(rfd, func() {
		buf := make([]byte, 16)
		n, _ := readFD(rfd, buf)
		got <- string(buf[:n])
		l.RemoveReader(rfd)
	}); err != nil {
		t.Fatal(err)
	}
	if err := l.AddReader(-1, func() {}); err == nil {
		t.Fatal("fd -1 accepted")
	}
	stop := running(t, l)
	defer stop()
	_, _ = w.Write([]byte("ready"))
	if s := <-got; s != "ready" {
		t.Fatal(s)
	}
}

// Both ways of sharing a port, SO_REUSEPORT (Linux) and one acceptor
// handing connections round (the other systems), serve every connection.
func TestGroupSpreadsConnections(t *testing.T) {
	for _, one := range []bool{false, true} {
		t.Run(fmt.Sprintf("oneAcceptor=%v", one), func(t *testing.T) { groupSpreads(t, one) })
	}
}

func groupSpreads(t *testing.T, oneAcceptor bool) {
	g, err := NewGroup("web", 2)
	if err != nil {
		t.Fatal(err)
	}
	g.oneAcceptor = oneAcceptor
	h := &echo{}
	addr, err := g.Listen("127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- g.Run(ctx) }()
	for range 40 {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte("x"))
		_, _ = io.ReadFull(c, make([]byte, 1))
		c.Close()
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	var total uint64
	for _, m := range g.Metrics() {
		total += m.Accepted
	}
	if total != 40 {
		t.Fatalf("accepted %d of 40", total)
	}
	for i, l := range g.Loops() {
		if n := l.m.conns.Load(); n != 0 {
			t.Errorf("loop %d: %d connections still counted open", i, n)
		}
		// Round-robin gives each loop half the connections.
		if got := h.on[l]; oneAcceptor && got != 20 {
			t.Errorf("loop %d served %d connections, want 20", i, got)
		}
	}
}

// RunInExecutor runs blocking work on a pool and delivers the result on the
// loop's own goroutine.
func TestRunInExecutorResumesOnTheLoop(t *testing.T) {
	l := newLoop(t)
	p := pool.New("test", pool.WithSize(2))
	defer p.Close(context.Background())
	type result struct {
		v      int
		err    error
		onLoop bool
	}
	got := make(chan result, 1)
	l.CallSoon(func() {
		_, err := RunInExecutor(l, p, "sum", func(ctx context.Context) (int, error) {
			time.Sleep(10 * time.Millisecond) // blocking work, off the loop
			return 42, nil
		}, func(v int, err error) { got <- result{v, err, goroutineID() == l.owner.Load()} })
		if err != nil {
			t.Error(err)
		}
	})
	stop := running(t, l)
	defer stop()
	r := <-got
	if r.v != 42 || r.err != nil || !r.onLoop {
		t.Fatalf("%+v", r)
	}
}

func TestDebugReportsSlowCallbacksAndWrongThreadCalls(t *testing.T) {
	var mu sync.Mutex
	var checks []string
	old := registry.SetHook(func(ev registry.Event) { mu.Lock(); checks = append(checks, ev.Check); mu.Unlock() })
	defer func() { registry.SetHook(old) }()
	l := newLoop(t, WithDebug(5*time.Millisecond))
	done := make(chan struct{})
	l.CallSoon(func() { time.Sleep(10 * time.Millisecond) })
	stop := running(t, l)
	defer stop()
	time.Sleep(20 * time.Millisecond)
	l.RemoveReader(1 << 20) // loop only, from the test goroutine: the wrong thread
	_ = l.Post(func() { close(done) })
	<-done
	m := l.Metrics()
	if m.SlowCallbacks != 1 || m.WrongThreadCalls != 1 {
		t.Fatalf("metrics %+v", m)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(checks) != 2 {
		t.Fatalf("events %v", checks)
	}
}

func TestStopClosesConnectionsAndRunsPostedWork(t *testing.T) {
	l := newLoop(t)
	closed := make(chan error, 1)
	opened := make(chan struct{})
	ln, _ := l.Listen("127.0.0.1:0", &funcs{open: func(*Conn) { close(opened) }, close: func(c *Conn, err error) { closed <- err }})
	errc := make(chan error, 1)
	go func() { errc <- l.Run(context.Background()) }()
	dial(t, ln)
	<-opened
	ran := make(chan struct{})
	_ = l.Post(func() { close(ran) })
	l.Stop()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	<-ran
	if err := <-closed; !errors.Is(err, ErrLoopClosed) {
		t.Fatalf("connection closed with %v", err)
	}
	if err := l.Run(context.Background()); !errors.Is(err, ErrLoopClosed) {
		t.Fatal("a loop ran twice")
	}
}

func TestManyCancelledTimersArePurged(t *testing.T) {
	l := newLoop(t)
	fired := make(chan struct{})
	l.CallSoon(func() {
		for range 1000 {
			l.CallLater(time.Hour, func() {}).Cancel()
		}
		l.CallLater(time.Millisecond, func() { close(fired) })
	})
	stop := running(t, l)
	defer stop()
	<-fired
	done := make(chan int, 1)
	_ = l.Post(func() { done <- len(l.timers) })
	if n := <-done; n > 10 {
		t.Fatalf("%d timers left after purging", n)
	}
}

func TestCloseWriteHalfClosesAfterFlushing(t *testing.T) {
	l := newLoop(t)
	h := &funcs{open: func(c *Conn) {
		_, _ = c.Write([]byte("bye"))
		c.CloseWrite()
		if _, err := c.Write([]byte("more")); !errors.Is(err, ErrConnClosed) {
			t.Errorf("Write after CloseWrite: %v", err)
		}
	}, data: func(c *Conn, b []byte) {
		if string(b) == "still here" {
			c.Close()
		}
	}}
	ln, _ := l.Listen("127.0.0.1:0", h)
	stop := running(t, l)
	defer stop()
	c := dial(t, ln)
	got, err := io.ReadAll(c) // ends at the half-close
	if err != nil || string(got) != "bye" {
		t.Fatalf("%q %v", got, err)
	}
	_, _ = c.Write([]byte("still here")) // the other direction still works
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after the server's Close: %v", err)
	}
}
