package loom

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestScopeShutdownCancelsAndWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := NewScope(context.Background(), WithName("bg"))
		var causes []error
		var mu sync.Mutex
		for range 3 {
			if err := sc.Go("ticker", func(ctx context.Context) error {
				<-ctx.Done()
				mu.Lock()
				causes = append(causes, context.Cause(ctx))
				mu.Unlock()
				return ctx.Err()
			}); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if sc.Len() != 3 {
			t.Fatalf("Len = %d", sc.Len())
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := sc.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown = %v", err)
		}
		for _, c := range causes {
			if c != ErrShutdown {
				t.Fatalf("cause %v, want ErrShutdown", c)
			}
		}
		if err := sc.Go("late", func(ctx context.Context) error { return nil }); !errors.Is(err, ErrClosed) {
			t.Fatalf("Go after Shutdown = %v", err)
		}
	})
}

func TestScopeFailuresDoNotStopOthersAndAreReturned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		sc := NewScope(context.Background())
		sc.Go("fails", func(ctx context.Context) error { return boom })
		survived := make(chan bool, 1)
		sc.Go("lives", func(ctx context.Context) error {
			time.Sleep(time.Second)
			survived <- ctx.Err() == nil
			return nil
		})
		if !<-survived {
			t.Fatal("a failure cancelled a sibling in a scope")
		}
		if err := sc.Shutdown(context.Background()); err != boom {
			t.Fatalf("Shutdown = %v, want the kept failure", err)
		}
	})
}

func TestScopeOnError(t *testing.T) {
	boom := errors.New("boom")
	got := make(chan string, 1)
	sc := NewScope(context.Background(), OnError(func(ti TaskInfo, err error) {
		got <- ti.Name + ": " + err.Error()
	}))
	sc.Go("worker", func(ctx context.Context) error { return boom })
	if s := <-got; s != "worker: boom" {
		t.Fatalf("handler got %q", s)
	}
	if err := sc.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown = %v: the handler took the failure", err)
	}
}

func TestScopeShutdownReportsLeaks(t *testing.T) {
	SetDebug(true)
	defer SetDebug(false)
	var events []DebugEvent
	var mu sync.Mutex
	SetDebugHandler(func(ev DebugEvent) { mu.Lock(); events = append(events, ev); mu.Unlock() })
	defer SetDebugHandler(nil)

	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		sc := NewScope(context.Background(), WithName("leaky"))
		sc.Go("stubborn", func(ctx context.Context) error { <-release; return nil })
		sc.Go("polite", func(ctx context.Context) error { <-ctx.Done(); return nil })
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := sc.Shutdown(ctx)
		var leak *LeakError
		if !errors.As(err, &leak) || len(leak.Tasks) != 1 || leak.Tasks[0].Name != "stubborn" {
			t.Fatalf("Shutdown = %v", err)
		}
		if !strings.Contains(err.Error(), `"stubborn"`) {
			t.Fatalf("message %q does not name the task", err)
		}
		mu.Lock()
		if len(events) != 1 || events[0].Check != "leaked-task" || events[0].Task.Stack == "" {
			t.Fatalf("debug events %+v", events)
		}
		mu.Unlock()
		close(release)
		if err := sc.Shutdown(context.Background()); err != nil {
			t.Fatalf("second Shutdown = %v", err)
		}
	})
}

func TestScopeInvalid(t *testing.T) {
	sc := NewScope(context.Background(), WithLimit(2))
	if err := sc.Go("x", func(ctx context.Context) error { return nil }); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Go = %v", err)
	}
	if err := sc.Shutdown(context.Background()); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Shutdown = %v", err)
	}
	//lint:ignore SA1012 testing the nil check
	if err := NewScope(context.Background()).Shutdown(nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Shutdown(nil) = %v", err)
	}
}
