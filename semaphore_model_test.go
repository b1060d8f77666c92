package loom

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The Semaphore's concurrent histories against a sequential model, and its
// liveness under load with a watchdog, as for the Queue.

type semOpKind uint8

const (
	semAcquire semOpKind = iota // with a context that may end while it waits
	semTry
	semRelease
	semCancel // the context of a client's Acquire ends
)

const semClients = 4

type semInput struct {
	kind   semOpKind
	n      int64
	client int
	seq    int // which Acquire of the client, for semAcquire and semCancel
}

// semState is what is held, and for each client which of its Acquire
// calls has had its context end (0: none yet).
type semState struct {
	held      int64
	cancelled [semClients]int
}

type semOutput struct {
	ok  bool   // acquired, or released
	err string // "cancelled", "over-release"
}

// semaphoreModel is a semaphore of the given size: the state is how much is
// held. An Acquire that took its weight fits; one that returned its
// context's error took nothing, at any moment; TryAcquire may also fail
// because waiters are queued, which the model cannot see, so only its
// successes are checked.
func semaphoreModel(size int64) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return semState{} },
		Step: func(state, input, output any) (bool, any) {
			st, in, out := state.(semState), input.(semInput), output.(semOutput)
			switch in.kind {
			case semAcquire, semTry:
				if out.ok {
					// Taken, and (go.dev/issue/63615) not after the
					// context ended.
					if st.held+in.n > size || in.kind == semAcquire && st.cancelled[in.client] == in.seq {
						return false, st
					}
					st.held += in.n
					return true, st
				}
				return in.kind == semTry || out.err == "cancelled" && st.cancelled[in.client] == in.seq, st
			case semRelease:
				if out.ok {
					if in.n > st.held {
						return false, st
					}
					st.held -= in.n
					return true, st
				}
				return out.err == "over-release" && in.n > st.held, st
			case semCancel:
				st.cancelled[in.client] = in.seq
				return true, st
			}
			return false, st
		},
		Equal: func(a, b any) bool { return a.(semState) == b.(semState) },
		DescribeOperation: func(input, output any) string {
			in, out := input.(semInput), output.(semOutput)
			return fmt.Sprintf("client %d: %v(%d) #%d -> %v %s", in.client, []string{"Acquire", "TryAcquire", "Release", "cancel"}[in.kind], in.n, in.seq, out.ok, out.err)
		},
	}
}

// semHistory runs clients goroutines, each taking and giving back weight
// in random ways, and records what every call returned. A client never
// asks for more while it holds some, so the history always ends.
func semHistory(s *Semaphore, rng *rand.Rand, clients, rounds int) []porcupine.Operation {
	var clock atomic.Int64
	var mu sync.Mutex
	var ops []porcupine.Operation
	record := func(client int, in semInput, call int64, out semOutput) {
		ret := clock.Add(1)
		mu.Lock()
		ops = append(ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
		mu.Unlock()
	}
	type plan struct {
		kind   semOpKind
		n      int64
		cancel bool // end the Acquire's context soon after it starts
		stray  int64
	}
	plans := make([][]plan, clients)
	for c := range plans {
		for range rounds {
			plans[c] = append(plans[c], plan{kind: semOpKind(rng.IntN(2)), n: rng.Int64N(3) + 1, cancel: rng.IntN(3) == 0, stray: rng.Int64N(4)})
		}
	}
	var wg sync.WaitGroup
	for c, p := range plans {
		wg.Go(func() {
			seq := 0
			for _, step := range p {
				seq++
				in := semInput{kind: step.kind, n: step.n, client: c, seq: seq}
				call := clock.Add(1)
				var out semOutput
				if step.kind == semTry {
					out.ok = s.TryAcquire(step.n)
				} else {
					ctx, cancel := context.WithCancel(context.Background())
					var timer *time.Timer
					cancelled := make(chan struct{})
					if step.cancel {
						timer = time.AfterFunc(time.Duration(rng.Int64N(50))*time.Microsecond, func() {
							defer close(cancelled)
							call := clock.Add(1)
							cancel()
							record(c, semInput{kind: semCancel, client: c, seq: seq}, call, semOutput{ok: true})
						})
					}
					err := s.Acquire(ctx, step.n)
					if timer != nil && !timer.Stop() {
						<-cancelled // recorded before this Acquire's end
					}
					cancel()
					out.ok = err == nil
					if err != nil {
						out.err = "cancelled"
					}
				}
				record(c, in, call, out)
				if out.ok {
					call := clock.Add(1)
					err := s.Release(step.n)
					record(c, semInput{kind: semRelease, n: step.n, client: c}, call, semOutput{ok: err == nil, err: overRelease(err)})
				}
				if step.stray > 2 {
					// Release what this client does not hold: usually
					// over-release, unless others hold enough.
					call := clock.Add(1)
					err := s.Release(step.stray + 2)
					record(c, semInput{kind: semRelease, n: step.stray + 2, client: c}, call, semOutput{ok: err == nil, err: overRelease(err)})
				}
			}
		})
	}
	wg.Wait()
	return ops
}

func overRelease(err error) string {
	if errors.Is(err, ErrOverRelease) {
		return "over-release"
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

func TestSemaphoreLinearizable(t *testing.T) {
	trials := 1500
	if testing.Short() {
		trials = 300
	}
	const size = 4
	model := semaphoreModel(size)
	var rng = rand.New(rand.NewPCG(4, 2))
	var mu sync.Mutex // rng is used by the timers' goroutines too
	locked := rand.New(&lockedSource{mu: &mu, src: rng})
	for trial := range trials {
		s := NewSemaphore("model", size)
		ops := semHistory(s, locked, semClients, 5)
		if res, _ := porcupine.CheckOperationsVerbose(model, ops, 0); res != porcupine.Ok {
			t.Fatalf("trial %d: history not linearizable (%v): %d operations", trial, res, len(ops))
		}
		if s.Waiting() != 0 {
			t.Fatalf("trial %d: %d waiters left", trial, s.Waiting())
		}
	}
}

// lockedSource makes a rand.Source safe for several goroutines.
type lockedSource struct {
	mu  *sync.Mutex
	src *rand.Rand
}

func (l *lockedSource) Uint64() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.src.Uint64()
}

// Many goroutines acquiring and releasing random weights, some giving up
// as they wait, some resizing: the flow never stops for five seconds, and
// at the end nothing is held and nobody waits.
func TestSemaphoreLiveness(t *testing.T) {
	rounds := 3000
	if testing.Short() {
		rounds = 500
	}
	s := NewSemaphore("liveness", 6)
	var progress atomic.Int64
	stop := make(chan struct{})
	watchdog(t, &progress, 5*time.Second, func() string {
		return fmt.Sprintf("held %d of %d, %d waiting", s.Held(), s.Size(), s.Waiting())
	}, stop)
	defer close(stop)
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for i := range rounds {
				n := r.Int64N(4) + 1
				ctx, cancel := context.WithCancel(context.Background())
				if r.IntN(5) == 0 {
					time.AfterFunc(time.Duration(r.IntN(100))*time.Microsecond, cancel)
				}
				if err := s.Acquire(ctx, n); err == nil {
					_ = s.Release(n)
				} else if !errors.Is(err, context.Canceled) && !errors.Is(err, ErrInvalidArgument) {
					t.Error(err)
				}
				cancel()
				if g == 0 && i%100 == 0 {
					_ = s.Resize(int64(4 + r.IntN(4)))
				}
				progress.Add(1)
			}
		})
	}
	wg.Wait()
	if s.Held() != 0 || s.Waiting() != 0 {
		t.Fatalf("held %d, waiting %d at the end", s.Held(), s.Waiting())
	}
}
