package loom

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
)

// waitAll runs n parties through b once and returns their results.
func waitAll(ctx context.Context, b *Barrier, n int) ([]int, []error) {
	idx := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			idx[i], errs[i] = b.Wait(ctx)
		}()
	}
	wg.Wait()
	return idx, errs
}

func TestBarrierReleasesAllAndResetsItself(t *testing.T) {
	b := NewBarrier("b", 3)
	for round := range 3 {
		idx, errs := waitAll(context.Background(), b, 3)
		if err := errors.Join(errs...); err != nil {
			t.Fatal(round, err)
		}
		slices.Sort(idx)
		if !slices.Equal(idx, []int{0, 1, 2}) {
			t.Fatalf("round %d: indexes %v", round, idx)
		}
	}
	if b.Parties() != 3 || b.Waiting() != 0 || b.Broken() {
		t.Fatal("state after rounds")
	}
}

func TestBarrierBreaksWhenAPartyGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBarrier("b", 3)
		got := make(chan error, 1)
		go func() { _, err := b.Wait(context.Background()); got <- err }()
		ctx, cancel := context.WithCancelCause(context.Background())
		mine := make(chan error, 1)
		go func() { _, err := b.Wait(ctx); mine <- err }()
		synctest.Wait()
		cause := errors.New("deadline for the party")
		cancel(cause)
		if err := <-mine; !errors.Is(err, cause) {
			t.Fatalf("the party that gave up: %v", err)
		}
		if err := <-got; !errors.Is(err, ErrBrokenBarrier) || !errors.Is(err, cause) {
			t.Fatalf("the party left waiting: %v", err)
		}
		if _, err := b.Wait(context.Background()); !errors.Is(err, ErrBrokenBarrier) || !b.Broken() {
			t.Fatal("a later Wait on a broken barrier:", err)
		}
		b.Reset()
		_, errs := waitAll(context.Background(), b, 3)
		if err := errors.Join(errs...); err != nil {
			t.Fatal("after Reset:", err)
		}
	})
}

func TestBarrierAbortAndReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBarrier("b", 2)
		got := make(chan error, 1)
		go func() { _, err := b.Wait(context.Background()); got <- err }()
		synctest.Wait()
		b.Reset() // fails the waiter, the barrier stays usable
		if err := <-got; !errors.Is(err, ErrBrokenBarrier) {
			t.Fatal(err)
		}
		if b.Broken() {
			t.Fatal("broken after Reset")
		}
		go func() { _, err := b.Wait(context.Background()); got <- err }()
		synctest.Wait()
		b.Abort()
		if err := <-got; !errors.Is(err, ErrBrokenBarrier) || !b.Broken() {
			t.Fatal(err)
		}
	})
}

func TestBarrierBadInput(t *testing.T) {
	if _, err := NewBarrier("b", 0).Wait(context.Background()); !errors.Is(err, ErrInvalidArgument) {
		t.Fatal(err)
	}
	if _, err := NewBarrier("b", 1).Wait(noCtx); !errors.Is(err, ErrInvalidArgument) {
		t.Fatal(err)
	}
	if i, err := NewBarrier("b", 1).Wait(context.Background()); i != 0 || err != nil {
		t.Fatal("a one-party barrier:", i, err)
	}
}
