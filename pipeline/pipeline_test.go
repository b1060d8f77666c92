package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"loom"
	"loom/internal/registry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func count(n int) func(yield func(int) bool) {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
}

func TestMapUnorderedGetsEverything(t *testing.T) {
	p := New(context.Background(), "squares")
	sq := Map(From(p, count(200)), "square", func(_ context.Context, v int) (int, error) { return v * v, nil }, Workers(8))
	got, err := ToSlice(sq)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	for i, v := range got {
		if v != i*i {
			t.Fatalf("got[%d] = %d", i, v)
		}
	}
	if len(got) != 200 {
		t.Fatalf("%d results", len(got))
	}
}

func TestOrderedKeepsInputOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := New(context.Background(), "ordered")
		out := Map(From(p, count(50)), "slow", func(_ context.Context, v int) (string, error) {
			time.Sleep(time.Duration((v*7)%5) * time.Millisecond) // finish out of order
			return strconv.Itoa(v), nil
		}, Workers(4), Ordered())
		got, err := ToSlice(out)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range got {
			if s != strconv.Itoa(i) {
				t.Fatalf("position %d holds %s", i, s)
			}
		}
	})
}

// A slow consumer holds the source back: only the buffers' worth is ever
// pulled ahead.
func TestBackpressureBoundsWhatIsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var pulled atomic.Int64
		src := func(yield func(int) bool) {
			for i := range 1000 {
				pulled.Add(1)
				if !yield(i) {
					return
				}
			}
		}
		p := New(context.Background(), "bp")
		s := Map(From(p, src, Buffer(2)), "inc", func(_ context.Context, v int) (int, error) { return v + 1, nil }, Workers(2), Buffer(2))
		consumed := 0
		maxAhead := int64(0)
		for range s.Items() {
			consumed++
			time.Sleep(time.Millisecond)
			synctest.Wait()
			maxAhead = max(maxAhead, pulled.Load()-int64(consumed))
		}
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
		// source buffer 2 + one held by the source + 2 workers + stage buffer 2
		if consumed != 1000 || maxAhead > 8 {
			t.Fatalf("consumed %d, the source ran %d ahead", consumed, maxAhead)
		}
	})
}

func TestErrorPolicies(t *testing.T) {
	failOdd := func(_ context.Context, v int) (int, error) {
		if v%2 == 1 {
			return 0, fmt.Errorf("odd %d", v)
		}
		return v, nil
	}
	// Stop: the first error cancels everything.
	var pulled atomic.Int64
	src := func(yield func(int) bool) {
		for i := range 100000 {
			pulled.Add(1)
			if !yield(i) {
				return
			}
		}
	}
	p := New(context.Background(), "stop")
	_, err := ToSlice(Map(From(p, src), "odd", failOdd))
	if err == nil || !errors.Is(err, err) || pulled.Load() > 1000 {
		t.Fatalf("stop: %v after pulling %d", err, pulled.Load())
	}
	// Skip: failing items vanish, the run succeeds.
	p = New(context.Background(), "skip")
	got, err := ToSlice(Map(From(p, count(10)), "odd", failOdd, OnError(Skip)))
	slices.Sort(got)
	if err != nil || !slices.Equal(got, []int{0, 2, 4, 6, 8}) {
		t.Fatalf("skip: %v %v", got, err)
	}
	// Collect: every error comes back.
	p = New(context.Background(), "collect")
	got, err = ToSlice(Map(From(p, count(10)), "odd", failOdd, OnError(Collect), Workers(3)))
	if len(got) != 5 || err == nil || joined(err) != 5 {
		t.Fatalf("collect: %v %v", got, err)
	}
}

// joined counts the errors joined in err.
func joined(err error) int {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return 1
	}
	n := 0
	for _, e := range j.Unwrap() {
		if e != nil {
			n += joined(e)
		}
	}
	return n
}

func TestBatchBySizeAndTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := New(context.Background(), "batch")
		src := func(yield func(int) bool) {
			for i := range 7 {
				if i == 5 {
					time.Sleep(time.Second) // a pause: the partial batch goes out on time
				}
				if !yield(i) {
					return
				}
			}
		}
		got, err := ToSlice(Batch(From(p, src), "batch", 3, 100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		want := [][]int{{0, 1, 2}, {3, 4}, {5, 6}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("batches %v, want %v", got, want)
		}
	})
}

func TestFanOutFanInFilterFlatMap(t *testing.T) {
	p := New(context.Background(), "fan")
	outs := Broadcast(From(p, count(10)), "copy", 2)
	evens := Filter(outs[0], "evens", func(v int) bool { return v%2 == 0 })
	tens := FlatMap(outs[1], "tens", func(_ context.Context, v int) ([]int, error) { return []int{v * 10, v*10 + 1}, nil })
	got, err := ToSlice(Merge("merge", evens, tens))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := []int{0, 2, 4, 6, 8}
	for i := range 10 {
		want = append(want, i*10, i*10+1)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

func TestEarlyBreakAndOutsideCancel(t *testing.T) {
	p := New(context.Background(), "early")
	s := Map(From(p, count(1_000_000)), "id", func(_ context.Context, v int) (int, error) { return v, nil }, Workers(4))
	n := 0
	for range s.Items() {
		if n++; n == 10 {
			break
		}
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("early break: %v", err)
	}

	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("shutting down")
	p = New(ctx, "outside")
	s = Map(From(p, count(1_000_000)), "id", func(ctx context.Context, v int) (int, error) {
		if v == 100 {
			cancel(cause)
		}
		return v, nil
	})
	for range s.Items() {
	}
	if err := p.Wait(); !errors.Is(err, cause) {
		t.Fatalf("outside cancel: %v", err)
	}
}

func TestPanicAndBadArguments(t *testing.T) {
	p := New(context.Background(), "panic")
	_, err := ToSlice(Map(From(p, count(3)), "boom", func(context.Context, int) (int, error) { panic("bad item") }))
	var pe *loom.PanicError
	if !errors.As(err, &pe) {
		t.Fatalf("panic: %v", err)
	}
	for name, build := range map[string]func(p *Pipeline) *Stream[int]{
		"workers": func(p *Pipeline) *Stream[int] {
			return Map(From(p, count(3)), "x", func(_ context.Context, v int) (int, error) { return v, nil }, Workers(0))
		},
		"buffer": func(p *Pipeline) *Stream[int] {
			return Map(From(p, count(3)), "x", func(_ context.Context, v int) (int, error) { return v, nil }, Buffer(-1))
		},
		"nil fn":  func(p *Pipeline) *Stream[int] { return Map[int, int](From(p, count(3)), "x", nil) },
		"nil seq": func(p *Pipeline) *Stream[int] { return From[int](p, nil) },
		"batch":   func(p *Pipeline) *Stream[int] { return Flatten(Batch(From(p, count(3)), "b", 0, 0), "f") },
	} {
		p := New(context.Background(), name)
		if _, err := ToSlice(build(p)); !errors.Is(err, loom.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Order holds with real goroutines racing, at several window sizes
// (workers + buffer), including the smallest.
func TestOrderedUnderContention(t *testing.T) {
	for _, c := range []struct{ workers, buffer int }{{2, 0}, {3, 1}, {8, 5}} {
		t.Run(fmt.Sprintf("workers=%d/buffer=%d", c.workers, c.buffer), func(t *testing.T) {
			p := New(context.Background(), "ordered-contention")
			out := Map(From(p, count(20_000)), "jitter", func(_ context.Context, v int) (int, error) {
				if v%7 == 0 {
					runtime.Gosched() // finish out of order
				}
				return v, nil
			}, Workers(c.workers), Buffer(c.buffer), Ordered())
			next := 0
			for v := range out.Items() {
				if v != next {
					t.Fatalf("got %d, want %d", v, next)
				}
				next++
			}
			if err := p.Wait(); err != nil || next != 20_000 {
				t.Fatalf("%d items, %v", next, err)
			}
		})
	}
}

// A stage's workers are loom's own wrappers; the monitor shows them as
// created where the user called Map, not inside this package.
func TestStageWorkersShowTheUsersCallSite(t *testing.T) {
	ctx := context.Background()
	release := make(chan struct{})
	pl := New(ctx, "where")
	out := Map(From(pl, slices.Values([]int{1, 2, 3})), "where-stage", func(ctx context.Context, n int) (int, error) {
		<-release
		return n, nil
	}, Workers(2))
	var locations []string
	for deadline := time.Now().Add(5 * time.Second); len(locations) == 0 && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		for _, in := range registry.Snapshot() {
			if strings.HasPrefix(in.Name, "where-stage#") {
				locations = append(locations, in.Location)
			}
		}
	}
	close(release)
	for range out.Items() {
	}
	if err := pl.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(locations) == 0 {
		t.Fatal("no worker of the stage in the registry")
	}
	for _, loc := range locations {
		if !strings.Contains(loc, "TestStageWorkersShowTheUsersCallSite") || !strings.Contains(loc, "pipeline_test.go") {
			t.Fatalf("a worker created at %q; want the Map call in this test", loc)
		}
	}
}

// A pipeline run for what its stages do, whose last stream nobody reads:
// Wait reads it, so every item passes every stage and Wait returns.
func TestWaitReadsWhatNobodyReads(t *testing.T) {
	var seen atomic.Int64
	p := New(context.Background(), "side-effects")
	Map(From(p, count(5000)), "count", func(_ context.Context, v int) (int, error) { seen.Add(1); return v, nil }, Workers(3))
	done := make(chan error, 1)
	go func() { done <- p.Wait() }()
	select {
	case err := <-done:
		if err != nil || seen.Load() != 5000 {
			t.Fatalf("Wait: %v, %d of 5000 items through the stage", err, seen.Load())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Wait did not return for a pipeline whose output nobody read")
	}
}

// Cancelled from outside while every stage waits on a full channel (the
// consumer has stopped reading): every kind of stage ends, Wait returns
// the cause, and no item starts in a stage after the cancellation. Each
// round has a watchdog; stages send with plain sends, which only the
// cancellation's drains release.
func TestCancelReleasesEveryBlockedStage(t *testing.T) {
	builds := map[string]func(p *Pipeline, started *atomic.Int64) *Stream[int]{
		"map": func(p *Pipeline, started *atomic.Int64) *Stream[int] {
			return Map(From(p, count(1_000_000)), "m", func(_ context.Context, v int) (int, error) { started.Add(1); return v, nil }, Workers(3))
		},
		"ordered": func(p *Pipeline, started *atomic.Int64) *Stream[int] {
			return Map(From(p, count(1_000_000)), "o", func(_ context.Context, v int) (int, error) { started.Add(1); return v, nil }, Workers(3), Ordered())
		},
		"flatmap-filter": func(p *Pipeline, started *atomic.Int64) *Stream[int] {
			return Filter(FlatMap(From(p, count(1_000_000)), "f", func(_ context.Context, v int) ([]int, error) { started.Add(1); return []int{v, v}, nil }),
				"even", func(v int) bool { return v%2 == 0 })
		},
		"batch-merge": func(p *Pipeline, started *atomic.Int64) *Stream[int] {
			a, b := From(p, count(1_000_000)), From(p, count(1_000_000))
			return Flatten(Batch(Merge("merge", a, b), "batch", 7, 0), "flat")
		},
		"broadcast": func(p *Pipeline, started *atomic.Int64) *Stream[int] {
			outs := Broadcast(From(p, count(1_000_000)), "bc", 3)
			return Merge("join", outs...)
		},
	}
	for name, build := range builds {
		for round := range 20 {
			ctx, cancel := context.WithCancelCause(context.Background())
			p := New(ctx, name)
			var started atomic.Int64
			s := build(p, &started)
			read := 0
			for range s.Items() {
				if read++; read == 1+round*13 {
					break // stop reading without cancelling: the stages fill up
				}
			}
			// The Items loop's break cancels; cancel from outside too on
			// odd rounds, before the stages have all noticed.
			if round%2 == 1 {
				cancel(errors.New("outside"))
			}
			done := make(chan error, 1)
			go func() { done <- p.Wait() }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("%s round %d: Wait did not return after the cancellation", name, round)
			}
			after := started.Load()
			time.Sleep(time.Millisecond)
			if started.Load() != after {
				t.Fatalf("%s round %d: items started after Wait returned", name, round)
			}
			cancel(nil)
		}
	}
}
