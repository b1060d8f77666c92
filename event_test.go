package loom

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestEventWakesEveryWaiterAndCanBeCleared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		e := NewEvent("ready")
		var woke sync.WaitGroup
		for range 5 {
			woke.Add(1)
			go func() {
				defer woke.Done()
				if err := e.Wait(ctx); err != nil {
					t.Error(err)
				}
			}()
		}
		synctest.Wait()
		if e.Waiting() != 5 || e.IsSet() {
			t.Fatalf("waiting %d set %v", e.Waiting(), e.IsSet())
		}
		e.Set()
		woke.Wait()
		if err := e.Wait(ctx); err != nil {
			t.Fatal("Wait on a set event:", err)
		}
		e.Clear()
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := e.Wait(tctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait after Clear: %v", err)
		}
		if e.Waiting() != 0 {
			t.Fatal("timed-out waiter still queued")
		}
	})
}

func TestEventZeroValueAndBadInput(t *testing.T) {
	var e Event
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	e.Set()
	if err := e.Wait(ctx); err != nil {
		t.Fatal("a set event wins over an ended context:", err)
	}
	if err := e.Wait(noCtx); !errors.Is(err, ErrInvalidArgument) {
		t.Fatal(err)
	}
}
