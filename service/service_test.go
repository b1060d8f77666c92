package service

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"loom"
	"loom/policy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// steady is a service that is ready at once and runs until cancelled.
func steady(name string, log *[]string, mu *sync.Mutex) Service {
	return Service{Name: name, Run: func(ctx context.Context, ready func()) error {
		mu.Lock()
		*log = append(*log, "start "+name)
		mu.Unlock()
		ready()
		<-ctx.Done()
		return nil
	}}
}

func TestStartsInOrderAndShutsDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var log []string
		s := New("app")
		for _, n := range []string{"db", "cache", "http"} {
			if err := s.Add(steady(n, &log, &mu)); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		<-s.Ready()
		if !slices.Equal(log, []string{"start db", "start cache", "start http"}) {
			t.Fatalf("order %v", log)
		}
		for _, st := range s.Status() {
			if st.State != "running" {
				t.Fatalf("%+v", st)
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		for _, st := range s.Status() {
			if st.State != "stopped" {
				t.Fatalf("after shutdown: %+v", st)
			}
		}
	})
}

func TestRestartsWithBackoffThenGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var starts []time.Time
		s := New("app", WithBackoff(policy.Backoff{Base: time.Second, Max: 8 * time.Second, Jitter: policy.NoJitter}), MaxRestarts(3), Decay(time.Hour))
		_ = s.Add(Service{Name: "flaky", Run: func(ctx context.Context, ready func()) error {
			starts = append(starts, time.Now())
			ready()
			time.Sleep(10 * time.Millisecond)
			return errors.New("lost connection")
		}})
		start := time.Now()
		err := s.Run(context.Background())
		if !errors.Is(err, ErrGaveUp) {
			t.Fatalf("Run: %v", err)
		}
		// Failures at +10ms each run; waits of 1s, 2s, 4s between them.
		var gaps []time.Duration
		for i := 1; i < len(starts); i++ {
			gaps = append(gaps, starts[i].Sub(starts[i-1])-10*time.Millisecond)
		}
		want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}
		if !slices.Equal(gaps, want) {
			t.Fatalf("gaps %v, want %v (total %v)", gaps, want, time.Since(start))
		}
		if st := s.Status()[0]; st.State != "failed" || st.Restarts != 3 {
			t.Fatalf("%+v", st)
		}
	})
}

func TestFailuresDecay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var runs atomic.Int64
		s := New("app", WithBackoff(policy.Backoff{Base: time.Second, Max: time.Second, Jitter: policy.NoJitter}), MaxRestarts(1), Decay(10*time.Second))
		_ = s.Add(Service{Name: "mostly-fine", Run: func(ctx context.Context, ready func()) error {
			runs.Add(1)
			ready()
			select {
			case <-time.After(30 * time.Second): // runs well for a while, then fails
				return errors.New("hiccup")
			case <-ctx.Done():
				return nil
			}
		}})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := s.Run(ctx); err != nil {
			t.Fatalf("one failure every 30s with a 10s decay should never give up: %v", err)
		}
		if runs.Load() < 4 {
			t.Fatalf("%d runs", runs.Load())
		}
	})
}

func TestOneForAllRestartsEveryService(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var log []string
		var failOnce atomic.Bool
		s := New("app", OneForAll(), WithBackoff(policy.Backoff{Base: time.Second, Max: time.Second, Jitter: policy.NoJitter}))
		_ = s.Add(steady("db", &log, &mu))
		_ = s.Add(Service{Name: "worker", Run: func(ctx context.Context, ready func()) error {
			mu.Lock()
			log = append(log, "start worker")
			mu.Unlock()
			ready()
			if failOnce.CompareAndSwap(false, true) {
				return errors.New("corrupt state")
			}
			<-ctx.Done()
			return nil
		}})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		time.Sleep(5 * time.Second)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		want := []string{"start db", "start worker", "start db", "start worker"}
		if !slices.Equal(log, want) {
			t.Fatalf("log %v, want %v", log, want)
		}
	})
}

func TestNotReadyAndNotStopped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("app", ReadyTimeout(time.Second), ShutdownTimeout(time.Second))
		block := make(chan struct{})
		_ = s.Add(Service{Name: "mute", Run: func(ctx context.Context, ready func()) error {
			<-ctx.Done()
			<-block // ignores its cancellation for a while
			return nil
		}})
		err := s.Run(context.Background())
		var ns *NotStoppedError
		if !errors.Is(err, ErrNotReady) || !errors.As(err, &ns) || ns.Services[0] != "mute" {
			t.Fatalf("Run: %v", err)
		}
		close(block)
		synctest.Wait()
	})
}

func TestPanicIsAFailureAndBadInput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("app", MaxRestarts(0))
		_ = s.Add(Service{Name: "boom", Run: func(ctx context.Context, ready func()) error {
			ready()
			panic("bad state")
		}})
		err := s.Run(context.Background())
		var pe *loom.PanicError
		if !errors.Is(err, ErrGaveUp) || !errors.As(err, &pe) {
			t.Fatalf("Run: %v", err)
		}
	})
	if err := New("x").Add(Service{Name: "no run"}); !errors.Is(err, loom.ErrInvalidArgument) {
		t.Fatal(err)
	}
	if err := New("x", WithBackoff(policy.Backoff{Base: 0, Max: 0, Jitter: policy.NoJitter})).Run(context.Background()); !errors.Is(err, loom.ErrInvalidArgument) {
		t.Fatal(err)
	}
}

// A one-for-all restart gives up, rather than hang, when a service will
// not stop.
func TestOneForAllGivesUpOnAServiceThatWillNotStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("app", OneForAll(), ShutdownTimeout(time.Second), WithBackoff(policy.Backoff{Base: time.Second, Max: time.Second, Jitter: policy.NoJitter}))
		release := make(chan struct{})
		_ = s.Add(Service{Name: "stubborn", Run: func(ctx context.Context, ready func()) error {
			ready()
			<-release // ignores its context
			return nil
		}})
		_ = s.Add(Service{Name: "crasher", Run: func(ctx context.Context, ready func()) error {
			ready()
			return errors.New("crash")
		}})
		err := s.Run(context.Background())
		if !errors.Is(err, ErrGaveUp) || !strings.Contains(err.Error(), "stubborn") {
			t.Fatalf("Run: %v", err)
		}
		close(release)
		synctest.Wait()
	})
}

// A service that says it is ready and then fails at once has started: it
// is restarted, not reported as a failure to start. Real scheduling, many
// times: both of start's channels are often ready when it looks.
func TestReadyThenFailIsARestartNotAStartFailure(t *testing.T) {
	for range 100 {
		var attempts atomic.Int64
		s := New("app", WithBackoff(policy.Backoff{Base: time.Millisecond, Max: time.Millisecond, Jitter: policy.NoJitter}))
		_ = s.Add(Service{Name: "quick-fail", Run: func(ctx context.Context, ready func()) error {
			n := attempts.Add(1)
			ready()
			if n == 1 {
				return errors.New("first run fails")
			}
			<-ctx.Done()
			return nil
		}})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		for attempts.Load() < 2 {
			select {
			case err := <-done:
				cancel()
				t.Fatalf("Run ended early: %v", err)
			case <-time.After(time.Millisecond):
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
	}
}
