package loop

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"loom/internal/registry"
	"loom/pool"
)

// asyncio's call_soon translated word for word: the loop runs in its own
// goroutine and another goroutine calls CallSoon and CallLater on it. Every
// callback runs, on the loop, with no race (issue 13 item 16: CallSoon
// from another goroutine raced on the ready list and, with the loop idle,
// never ran).
func TestCallSoonAndCallLaterFromAnyGoroutine(t *testing.T) { modes(t, callSoonFromAnywhere) }

func callSoonFromAnywhere(t *testing.T, opts ...Option) {
	l := newLoop(t, opts...)
	stop := running(t, l)
	defer stop()
	const goroutines, each = 4, 500
	var ran atomic.Int64
	var wrong atomic.Int64
	all := make(chan struct{})
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				l.CallSoon(func() {
					if goroutineID() != l.owner.Load() {
						wrong.Add(1)
					}
					if ran.Add(1) == goroutines*each {
						close(all)
					}
				})
			}
		})
	}
	wg.Wait()
	select {
	case <-all:
	case <-time.After(10 * time.Second):
		t.Fatalf("%d of %d callbacks ran", ran.Load(), goroutines*each)
	}
	if wrong.Load() != 0 {
		t.Fatalf("%d callbacks ran off the loop", wrong.Load())
	}
	fired := make(chan bool, 1)
	time.Sleep(20 * time.Millisecond) // let the loop go idle, waiting with no timer
	l.CallLater(10*time.Millisecond, func() { fired <- goroutineID() == l.owner.Load() })
	select {
	case onLoop := <-fired:
		if !onLoop {
			t.Fatal("the timer ran off the loop")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a timer made from another goroutine while the loop was idle never fired")
	}
}

// Submit runs a function on the loop from any goroutine and hands back its
// result as a task (asyncio's run_coroutine_threadsafe); on a stopped loop
// it says so at once.
func TestSubmitReturnsATask(t *testing.T) {
	l := newLoop(t, WithName("submit"))
	stop := running(t, l)
	ctx := context.Background()
	task, err := Submit(ctx, l, "on-loop", func(ctx context.Context) (bool, error) {
		return goroutineID() == l.owner.Load(), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if onLoop, err := task.Wait(ctx); err != nil || !onLoop {
		t.Fatalf("Submit: %v %v", onLoop, err)
	}
	boom := errors.New("boom")
	failing, _ := Submit(ctx, l, "fails", func(context.Context) (int, error) { return 0, boom })
	if _, err := failing.Wait(ctx); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	stop()
	late, err := Submit(ctx, l, "late", func(context.Context) (int, error) { return 1, nil })
	if !errors.Is(err, ErrLoopClosed) {
		t.Fatalf("Submit on a stopped loop: %v", err)
	}
	if _, err := late.Wait(ctx); !errors.Is(err, ErrLoopClosed) {
		t.Fatalf("its task: %v", err)
	}
	if _, err := Submit[int](ctx, nil, "x", func(context.Context) (int, error) { return 0, nil }); err == nil {
		t.Fatal("nil loop accepted")
	}
	if _, err := Submit[int](ctx, l, "x", nil); err == nil {
		t.Fatal("nil function accepted")
	}
}

// RunInExecutor on a stopped loop returns ErrLoopClosed at once (issue 13
// item 19: it returned a task that failed later).
func TestRunInExecutorOnAStoppedLoop(t *testing.T) {
	l := newLoop(t)
	running(t, l)()
	p := pool.New("test", pool.WithSize(1))
	defer p.Close(context.Background())
	task, err := RunInExecutor(l, p, "late", func(context.Context) (int, error) { return 1, nil }, func(int, error) {})
	if !errors.Is(err, ErrLoopClosed) || task != nil {
		t.Fatalf("RunInExecutor on a stopped loop: %v, %v", task, err)
	}
}

// A loop held up by a blocked callback shows it: the posted backlog counts
// in ReadyQueue and the time in the callback in Busy; a loop idle after a
// little work reads idle, in total and over the last seconds (issue 13 item
// 17: ReadyQueue read 0 and BusyRatio 0.998).
func TestMetricsTellTheLoopsStateNow(t *testing.T) {
	l := newLoop(t)
	stop := running(t, l)
	defer stop()
	release := make(chan struct{})
	blocked := make(chan struct{})
	l.CallSoon(func() { close(blocked); <-release })
	<-blocked
	for range 5 {
		_ = l.Post(func() {})
	}
	time.Sleep(100 * time.Millisecond)
	m := l.Metrics()
	if m.ReadyQueue < 5 || m.Busy < 100*time.Millisecond || m.RecentBusy < 100*time.Millisecond || m.RecentBusyRatio < 0.5 {
		t.Errorf("a loop stuck in a callback with 5 posted: ReadyQueue %d, Busy %v, RecentBusy %v, RecentBusyRatio %.2f",
			m.ReadyQueue, m.Busy, m.RecentBusy, m.RecentBusyRatio)
	}
	close(release)
	done := make(chan struct{})
	_ = l.Post(func() { close(done) })
	<-done
	time.Sleep(400 * time.Millisecond) // idle, with the wait in progress
	m = l.Metrics()
	if m.ReadyQueue != 0 || m.IOWait < 400*time.Millisecond || m.BusyRatio > 0.5 || m.RecentBusyRatio > 0.5 {
		t.Errorf("an idle loop: ReadyQueue %d, IOWait %v, BusyRatio %.2f, RecentBusyRatio %.2f", m.ReadyQueue, m.IOWait, m.BusyRatio, m.RecentBusyRatio)
	}
	if m.RecentBusy+m.RecentIOWait > recentSeconds*time.Second+time.Second {
		t.Errorf("the recent window holds %v", m.RecentBusy+m.RecentIOWait)
	}
}

// slowHandler takes 60 ms in each of its events.
type slowHandler struct{ closed chan struct{} }

func (h *slowHandler) OnOpen(c *Conn)           { time.Sleep(60 * time.Millisecond) }
func (h *slowHandler) OnData(c *Conn, _ []byte) { time.Sleep(60 * time.Millisecond); c.Close() }
func (h *slowHandler) OnClose(c *Conn, _ error) {
	time.Sleep(60 * time.Millisecond)
	close(h.closed)
}

// Debug mode times connection handlers as it times callbacks, and names a
// loop that was given no name (issue 13 item 18).
func TestDebugReportsSlowConnectionHandlers(t *testing.T) {
	var mu sync.Mutex
	var msgs []string
	old := registry.SetHook(func(ev registry.Event) {
		if ev.Check == "slow-callback" {
			mu.Lock()
			msgs = append(msgs, ev.Message)
			mu.Unlock()
		}
	})
	defer func() { registry.SetHook(old) }()
	l := newLoop(t, WithDebug(20*time.Millisecond))
	if !strings.HasPrefix(l.Name(), "loop-") {
		t.Fatalf("a loop made without a name is called %q", l.Name())
	}
	h := &slowHandler{closed: make(chan struct{})}
	ln, err := l.Listen("127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	stop := running(t, l)
	defer stop()
	c := dial(t, ln)
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	<-h.closed
	done := make(chan struct{})
	_ = l.Post(func() { close(done) }) // OnClose's report is made once it returns
	<-done
	mu.Lock()
	defer mu.Unlock()
	all := strings.Join(msgs, "\n")
	for _, what := range []string{"OnOpen", "OnData", "OnClose"} {
		if !strings.Contains(all, `loop "`+l.Name()+`": `+what+" ran for") {
			t.Errorf("no slow-callback report for %s in:\n%s", what, all)
		}
	}
}
