package jetstream_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"loom/dist"
	"loom/dist/disttest"
	"loom/dist/jetstream"
)

func TestMain(m *testing.M) {
	if childRole() {
		return
	}
	goleak.VerifyTestMain(m)
}

// embedded starts an embedded server for the test, on a temporary
// directory, and shuts it down at the end.
func embedded(t *testing.T, opts ...jetstream.EmbeddedOption) *jetstream.Backend {
	t.Helper()
	b, err := jetstream.Embedded(t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// The conformance suite on a real JetStream server, embedded.
func TestJetStreamBackend(t *testing.T) {
	b := embedded(t)
	disttest.Run(t, func(*testing.T) dist.Backend { return b })
}

// A Get that waits on the server for the next message and leaves (its
// context ended) hands the wait to another Get: the message put after that
// still reaches the Get that stayed.
func TestWaitingGetHandsOver(t *testing.T) {
	b := embedded(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	q, err := dist.Open[int](ctx, b, "handover")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for round := range 5 {
		short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
		left := make(chan error, 1)
		go func() { _, err := q.Get(short); left <- err }()
		time.Sleep(20 * time.Millisecond) // the short Get is the one waiting on the server
		got := make(chan int, 1)
		go func() {
			m, err := q.Get(ctx)
			if err != nil {
				t.Error(err)
				got <- -1
				return
			}
			_ = m.Done(ctx)
			got <- m.Value
		}()
		if err := <-left; !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("the short Get: %v", err)
		}
		stop()
		if err := q.Put(ctx, round); err != nil {
			t.Fatal(err)
		}
		select {
		case v := <-got:
			if v != round {
				t.Fatalf("got %d, want %d", v, round)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the message put after the waiting Get left reached nobody")
		}
	}
}

// Many Gets that come and go (short contexts, some ended while asleep,
// some while waiting on the server) while messages trickle in: every
// message is taken, and the run never stalls (a watchdog fails it after 5s
// without progress).
func TestGetsComingAndGoingTakeEveryMessage(t *testing.T) {
	b := embedded(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	q, err := dist.Open[int](ctx, b, "churn")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	const n = 300
	var taken atomic.Int64
	seen := make([]atomic.Bool, n)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for taken.Load() < n && ctx.Err() == nil {
				gctx, stop := context.WithTimeout(ctx, time.Duration(1+r.IntN(60))*time.Millisecond)
				m, err := q.Get(gctx)
				stop()
				if err != nil {
					continue
				}
				if seen[m.Value].Swap(true) {
					t.Errorf("message %d taken twice", m.Value)
				}
				if err := m.Done(ctx); err != nil {
					t.Error(err)
				}
				taken.Add(1)
			}
		})
	}
	go func() {
		r := rand.New(rand.NewPCG(1, 2))
		for i := range n {
			if err := q.Put(ctx, i); err != nil {
				t.Error(err)
				return
			}
			if r.IntN(4) == 0 {
				time.Sleep(time.Duration(r.IntN(3)) * time.Millisecond)
			}
		}
	}()
	last, lastAt := int64(-1), time.Now()
	for taken.Load() < n {
		if got := taken.Load(); got != last {
			last, lastAt = got, time.Now()
		} else if time.Since(lastAt) > 5*time.Second {
			cancel()
			wg.Wait()
			t.Fatalf("no progress for 5s: %d of %d messages taken", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	wg.Wait()
}
