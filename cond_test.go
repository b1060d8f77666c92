package loom

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
)

func TestCondSignalWakesOneBroadcastWakesAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		c := NewCond("c", &mu)
		woken := 0
		for range 3 {
			go func() {
				mu.Lock()
				defer mu.Unlock()
				if err := c.Wait(context.Background()); err != nil {
					t.Error(err)
				}
				woken++
			}()
		}
		synctest.Wait()
		if c.Waiting() != 3 {
			t.Fatalf("waiting %d", c.Waiting())
		}
		c.Signal()
		synctest.Wait()
		mu.Lock()
		if woken != 1 {
			t.Fatalf("Signal woke %d", woken)
		}
		mu.Unlock()
		c.Broadcast()
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if woken != 3 || c.Waiting() != 0 {
			t.Fatalf("Broadcast: woken %d, waiting %d", woken, c.Waiting())
		}
	})
}

// A waiter is queued before it unlocks: a signal sent by whoever takes the
// lock next always finds it.
func TestCondSignalAfterUnlockIsNotLost(t *testing.T) {
	var mu sync.Mutex
	c := NewCond("c", &mu)
	for range 200 {
		ready := false
		mu.Lock()
		go func() {
			mu.Lock()
			ready = true
			c.Signal()
			mu.Unlock()
		}()
		for !ready {
			if err := c.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		mu.Unlock()
	}
}

func TestCondCancelledWaitReturnsCauseWithLockHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		c := NewCond("c", &mu)
		ctx, cancel := context.WithCancelCause(context.Background())
		cause := errors.New("stop")
		got := make(chan error, 1)
		go func() {
			mu.Lock()
			err := c.Wait(ctx)
			if mu.TryLock() {
				t.Error("Wait returned without the lock held")
			}
			mu.Unlock()
			got <- err
		}()
		synctest.Wait()
		cancel(cause)
		if err := <-got; !errors.Is(err, cause) {
			t.Fatalf("got %v", err)
		}
		if c.Waiting() != 0 {
			t.Fatal("cancelled waiter still queued")
		}
	})
}

// A signal that reaches a waiter whose context ends at the same moment is
// reported as the signal, so it is never lost.
func TestCondSignalRacingCancellationIsReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for range 50 {
			var mu sync.Mutex
			c := NewCond("c", &mu)
			ctx, cancel := context.WithCancel(context.Background())
			got := make(chan error, 1)
			go func() {
				mu.Lock()
				got <- c.Wait(ctx)
				mu.Unlock()
			}()
			synctest.Wait()
			c.Signal()
			cancel()
			if err := <-got; err != nil {
				t.Fatalf("a signalled waiter reported %v", err)
			}
		}
	})
}

func TestCondBadInput(t *testing.T) {
	var mu sync.Mutex
	if err := NewCond("c", nil).Wait(context.Background()); !errors.Is(err, ErrInvalidArgument) {
		t.Fatal(err)
	}
	if err := NewCond("c", &mu).Wait(noCtx); !errors.Is(err, ErrInvalidArgument) {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	mu.Lock()
	if err := NewCond("c", &mu).Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	mu.Unlock() // still held: an ended context returns without unlocking
}
