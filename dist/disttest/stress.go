package disttest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"loom/dist"
)

// liveness runs producers and consumers that settle at random (done,
// retry, or no outcome at all, as a crashed consumer) with a watchdog
// that fails on ten seconds without progress: every value is done once in
// the end.
func liveness(t *testing.T, b dist.Backend) {
	q := open[int](t, b, dist.AckWait(300*time.Millisecond), dist.MaxAttempts(1000))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const producers, each = 4, 100
	var progress atomic.Int64
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		last, since := progress.Load(), time.Now()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if n := progress.Load(); n != last {
				last, since = n, time.Now()
			} else if time.Since(since) > 10*time.Second {
				st, _ := q.Stats(context.Background())
				t.Errorf("no progress for 10s at %d steps: %+v", n, st)
				cancel()
				return
			}
		}
	}()
	var mu sync.Mutex
	done := map[int]int{}
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				if err := q.Put(ctx, p*each+i); err != nil {
					t.Error(err)
					return
				}
				progress.Add(1)
			}
		})
	}
	cctx, stopConsumers := context.WithCancel(ctx)
	var cwg sync.WaitGroup
	for c := range 4 {
		cwg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(c), 9))
			for {
				m, err := q.Get(cctx)
				if err != nil {
					return
				}
				progress.Add(1)
				switch k := r.IntN(20); {
				case k < 2: // crashed: no outcome, redelivered after AckWait
				case k < 5:
					_ = m.Retry(ctx, time.Duration(r.IntN(20))*time.Millisecond)
				default:
					if m.Done(ctx) == nil {
						mu.Lock()
						done[m.Value]++
						mu.Unlock()
					}
				}
			}
		})
	}
	wg.Wait()
	if err := q.Join(ctx); err != nil {
		t.Fatal(err)
	}
	stopConsumers()
	cwg.Wait()
	for i := range producers * each {
		if done[i] != 1 {
			t.Fatalf("value %d done %d times", i, done[i])
		}
	}
}

// The operations of the linearizability check.
type opKind uint8

const (
	opPut opKind = iota
	opGet
	opDone
	opRetry
)

type op struct {
	kind opKind
	v    int
}

type out struct {
	v  int
	ok bool
}

// bag is the model's state: the values queued and those taken, sorted.
type bag struct{ queued, taken []int }

func without(s []int, v int) ([]int, bool) {
	i := slices.Index(s, v)
	if i < 0 {
		return s, false
	}
	return slices.Delete(slices.Clone(s), i, i+1), true
}

func with(s []int, v int) []int {
	s = append(slices.Clone(s), v)
	slices.Sort(s)
	return s
}

// queueModel is a queue as a bag: Put adds a value, Get takes any queued
// one (order is not promised across concurrent consumers and redeliveries),
// Done removes a taken one, Retry puts a taken one back. Nothing appears
// that was not put, nothing is taken twice at once, nothing is lost.
var queueModel = porcupine.Model{
	Init: func() any { return bag{} },
	Step: func(state, input, output any) (bool, any) {
		s, in, o := state.(bag), input.(op), output.(out)
		switch in.kind {
		case opPut:
			return o.ok, bag{with(s.queued, in.v), s.taken}
		case opGet:
			q, ok := without(s.queued, o.v)
			if !ok {
				return false, s
			}
			return true, bag{q, with(s.taken, o.v)}
		case opDone:
			tk, ok := without(s.taken, in.v)
			return ok && o.ok, bag{s.queued, tk}
		case opRetry:
			tk, ok := without(s.taken, in.v)
			return ok && o.ok, bag{with(s.queued, in.v), tk}
		}
		return false, s
	},
	Equal: func(a, b any) bool {
		x, y := a.(bag), b.(bag)
		return slices.Equal(x.queued, y.queued) && slices.Equal(x.taken, y.taken)
	},
	DescribeOperation: func(input, output any) string {
		in, o := input.(op), output.(out)
		return fmt.Sprintf("%v(%d) -> %d %v", []string{"Put", "Get", "Done", "Retry"}[in.kind], in.v, o.v, o.ok)
	},
}

// linearizable records histories of clients putting, taking, finishing and
// handing back values on one queue (AckWait long enough that nothing is
// redelivered behind the model's back) and checks each against the model.
func linearizable(t *testing.T, b dist.Backend) {
	trials := 30
	if testing.Short() {
		trials = 10
	}
	for trial := range trials {
		q := open[int](t, b, dist.AckWait(time.Minute))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var clock atomic.Int64
		var mu sync.Mutex
		var ops []porcupine.Operation
		record := func(c int, in op, call int64, o out) {
			ret := clock.Add(1)
			mu.Lock()
			ops = append(ops, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: o, Return: ret})
			mu.Unlock()
		}
		var wg sync.WaitGroup
		for c := range 3 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(trial), uint64(c)))
				for i := range 3 {
					v := c*10 + i
					call := clock.Add(1)
					err := q.Put(ctx, v)
					record(c, op{opPut, v}, call, out{ok: err == nil})
					call = clock.Add(1)
					m, err := q.Get(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					record(c, op{kind: opGet}, call, out{v: m.Value, ok: true})
					call = clock.Add(1)
					if r.IntN(3) == 0 {
						err = m.Retry(ctx, 0)
						record(c, op{opRetry, m.Value}, call, out{ok: err == nil})
					} else {
						err = m.Done(ctx)
						record(c, op{opDone, m.Value}, call, out{ok: err == nil})
					}
				}
			})
		}
		wg.Wait()
		cancel()
		if res, _ := porcupine.CheckOperationsVerbose(queueModel, ops, 10*time.Second); res != porcupine.Ok {
			t.Fatalf("trial %d: history not linearizable (%v)", trial, res)
		}
		_ = q.Close()
	}
}
