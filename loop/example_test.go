package loop_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"time"

	"loom/loop"
	"loom/pool"
)

// echo is an asyncio-style protocol: it writes back what it reads.
type echo struct{}

func (echo) OnOpen(c *loop.Conn)              {}
func (echo) OnData(c *loop.Conn, data []byte) { c.Write(data) }
func (echo) OnClose(c *loop.Conn, err error)  {}

// An echo server on a loop, and a client using the standard library.
func Example_echo() {
	l, err := loop.New(loop.WithName("echo"))
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, err := l.Listen("127.0.0.1:0", echo{})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Fprintln(c, "hello, loop")
	line, _ := bufio.NewReader(c).ReadString('\n')
	fmt.Print(line)
	c.Close()
	stop()
	fmt.Println(<-done)
	// Output:
	// hello, loop
	// context canceled
}

// hasher answers each line with its SHA-256, computed on a pool so that
// the loop never blocks; the answer is written back on the loop.
type hasher struct{ p *pool.Pool }

func (h hasher) OnOpen(c *loop.Conn) {}
func (h hasher) OnData(c *loop.Conn, data []byte) {
	line := string(data) // data is only valid during the call
	loop.RunInExecutor(c.Loop(), h.p, "hash", func(context.Context) ([32]byte, error) {
		sum := sha256.Sum256([]byte(line))
		for range 1000 { // CPU-heavy work
			sum = sha256.Sum256(sum[:])
		}
		return sum, nil
	}, func(sum [32]byte, err error) {
		fmt.Fprintf(connWriter{c}, "%x\n", sum[:4])
	})
}
func (h hasher) OnClose(c *loop.Conn, err error) {}

type connWriter struct{ c *loop.Conn }

func (w connWriter) Write(b []byte) (int, error) { return w.c.Write(b) }

// A server that offloads CPU-heavy requests to a pool with RunInExecutor.
func ExampleRunInExecutor() {
	p := pool.New("cpu")
	defer p.Close(context.Background())
	l, _ := loop.New()
	ln, _ := l.Listen("127.0.0.1:0", hasher{p})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()

	c, _ := net.Dial("tcp", ln.Addr().String())
	fmt.Fprint(c, "abc")
	line, _ := bufio.NewReader(c).ReadString('\n')
	fmt.Print(line)
	c.Close()
	stop()
	<-done
	// Output: 0a5afc0e
}

// greeter wants each client's greeting within a deadline, and clears the
// deadline once it has come.
type greeter struct{ closed chan error }

func (g greeter) OnOpen(c *loop.Conn) { c.SetReadDeadline(time.Now().Add(300 * time.Millisecond)) }
func (g greeter) OnData(c *loop.Conn, data []byte) {
	c.SetReadDeadline(time.Time{})
	c.Write([]byte("welcome\n"))
}
func (g greeter) OnClose(c *loop.Conn, err error) { g.closed <- err }

// A read deadline closes a client that says nothing in time; one that
// greets in time is served. The loop runs on an OS thread of its own here
// (WithLockedThread), as a loop whose callbacks call thread-affine C code
// would.
func ExampleConn_SetReadDeadline() {
	l, _ := loop.New(loop.WithLockedThread())
	g := greeter{closed: make(chan error, 2)}
	ln, _ := l.Listen("127.0.0.1:0", g)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()

	silent, _ := net.Dial("tcp", ln.Addr().String())
	fmt.Println("silent client closed:", <-g.closed)
	silent.Close()

	polite, _ := net.Dial("tcp", ln.Addr().String())
	fmt.Fprintln(polite, "hello")
	line, _ := bufio.NewReader(polite).ReadString('\n')
	fmt.Print("polite client got: ", line)
	polite.Close()
	stop()
	<-done
	// Output:
	// silent client closed: loop: read deadline passed
	// polite client got: welcome
}

// Work handed to a running loop from another goroutine, with its result
// back as a task (asyncio's run_coroutine_threadsafe): the loop's state is
// touched only on the loop's goroutine, so it needs no lock.
func ExampleSubmit() {
	l, _ := loop.New(loop.WithName("counter"))
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()

	count := 0 // loop state
	for range 3 {
		l.CallSoon(func() { count++ }) // CallSoon is safe from any goroutine
	}
	t, _ := loop.Submit(ctx, l, "read count", func(context.Context) (int, error) { return count, nil })
	n, err := t.Wait(ctx)
	fmt.Println(n, err)
	stop()
	<-done
	// Output: 3 <nil>
}
