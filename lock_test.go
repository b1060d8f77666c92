package loom

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
)

func TestLockExcludesAndHandsOverInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l := NewLock("l")
		if err := l.Lock(ctx); err != nil || !l.Locked() || l.TryLock() {
			t.Fatal("first Lock")
		}
		var order []int
		var mu sync.Mutex
		for i := range 3 {
			go func() {
				if err := l.Lock(ctx); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				l.Unlock()
			}()
			synctest.Wait() // queue them in a known order
		}
		if l.Waiting() != 3 {
			t.Fatalf("waiting %d", l.Waiting())
		}
		l.Unlock()
		synctest.Wait()
		if len(order) != 3 || order[0] != 0 || order[1] != 1 || order[2] != 2 {
			t.Fatalf("handed over in order %v, want [0 1 2]", order)
		}
		if l.Locked() {
			t.Fatal("still locked after the last Unlock")
		}
	})
}

func TestLockCancelledWaiterDoesNotGetTheLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l Lock // the zero value works
		ctx := context.Background()
		_ = l.Lock(ctx)
		cctx, cancel := context.WithCancelCause(ctx)
		got := make(chan error, 1)
		go func() { got <- l.Lock(cctx) }()
		synctest.Wait()
		cause := errors.New("shutting down")
		cancel(cause)
		if err := <-got; !errors.Is(err, cause) {
			t.Fatalf("got %v, want the cause", err)
		}
		l.Unlock()
		if l.Locked() || l.Waiting() != 0 {
			t.Fatal("the cancelled waiter was given the lock")
		}
		if err := l.Lock(cctx); !errors.Is(err, cause) {
			t.Fatalf("Lock with an ended context: %v", err)
		}
		if err := l.Lock(noCtx); !errors.Is(err, ErrInvalidArgument) {
			t.Fatal(err)
		}
	})
}

func TestLockUnlockOfUnlockedPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	var l Lock
	l.Unlock()
}

func TestLockMutualExclusionStress(t *testing.T) {
	var l Lock
	counter := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				if err := l.Lock(context.Background()); err != nil {
					t.Error(err)
					return
				}
				counter++ // the race detector checks the exclusion
				l.Unlock()
			}
		}()
	}
	wg.Wait()
	if counter != 8*500 {
		t.Fatalf("counter %d", counter)
	}
}
