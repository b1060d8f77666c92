package pool

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

// The pool's concurrent histories against a sequential model: a bounded
// pool admits a task when fewer than size+queue are admitted and not yet
// given back, refuses it (ErrPoolFull) only when that many are, and runs
// at most size at once.

type poolOpKind uint8

const (
	poolTry    poolOpKind = iota // TrySubmit
	poolStart                    // a task's function begins
	poolFinish                   // a task's function returns
)

type poolInput struct {
	kind   poolOpKind
	client int
}

type poolOutput struct{ ok bool } // TrySubmit admitted the task

// poolState counts the admitted tasks: queued (or handed to a worker, not
// begun), running, and finished but perhaps still holding their slot (the
// pool gives a slot back just after the function returns, which no caller
// sees).
type poolState struct{ queued, running, releasing int }

// poolModel is a pool of size workers and a queue of queue tasks. Its
// step is nondeterministic only in when finished tasks give their slots
// back: any number of them may have done so before a TrySubmit.
func poolModel(size, queue int) porcupine.Model {
	capacity := size + queue
	nm := porcupine.NondeterministicModel{
		Init: func() []any { return []any{poolState{}} },
		Step: func(state, input, output any) []any {
			st, in, out := state.(poolState), input.(poolInput), output.(poolOutput)
			switch in.kind {
			case poolTry:
				var next []any
				for k := 0; k <= st.releasing; k++ {
					s := poolState{st.queued, st.running, st.releasing - k}
					held := s.queued + s.running + s.releasing
					switch {
					case out.ok && held < capacity:
						s.queued++
						next = append(next, s)
					case !out.ok && held == capacity:
						next = append(next, s)
					}
				}
				return next
			case poolStart:
				if st.queued > 0 && st.running < size {
					return []any{poolState{st.queued - 1, st.running + 1, st.releasing}}
				}
			case poolFinish:
				if st.running > 0 {
					return []any{poolState{st.queued, st.running - 1, st.releasing + 1}}
				}
			}
			return nil
		},
		Equal: func(a, b any) bool { return a.(poolState) == b.(poolState) },
		DescribeOperation: func(input, output any) string {
			in, out := input.(poolInput), output.(poolOutput)
			return fmt.Sprintf("client %d: %s -> %v", in.client, []string{"TrySubmit", "start", "finish"}[in.kind], out.ok)
		},
	}
	return nm.ToModel()
}

// poolHistory has clients goroutines each TrySubmit rounds tasks that run
// for a few random microseconds, recording every call and every task's
// start and end, then closes the pool. A watchdog fails the test if the
// history stops moving.
func poolHistory(t *testing.T, p *Pool, rng *rand.Rand, clients, rounds int) []porcupine.Operation {
	var clock atomic.Int64
	var mu sync.Mutex
	var ops []porcupine.Operation
	record := func(in poolInput, call int64, out poolOutput) {
		ret := clock.Add(1)
		mu.Lock()
		ops = append(ops, porcupine.Operation{ClientId: in.client, Input: in, Call: call, Output: out, Return: ret})
		mu.Unlock()
	}
	// Tasks get ClientIds past the clients', one each, so that porcupine
	// never takes one task's start and end for one client's calls.
	var taskIDs atomic.Int64
	taskIDs.Store(int64(clients))
	type plan struct{ pause, run time.Duration }
	plans := make([][]plan, clients)
	for c := range plans {
		for range rounds {
			plans[c] = append(plans[c], plan{time.Duration(rng.IntN(40)) * time.Microsecond, time.Duration(rng.IntN(80)) * time.Microsecond})
		}
	}
	var wg sync.WaitGroup
	for c, pl := range plans {
		wg.Go(func() {
			for _, step := range pl {
				time.Sleep(step.pause)
				id := int(taskIDs.Add(1))
				call := clock.Add(1)
				_, err := TrySubmit(context.Background(), p, "modelled", func(context.Context) (int, error) {
					record(poolInput{kind: poolStart, client: id}, clock.Add(1), poolOutput{ok: true})
					time.Sleep(step.run)
					record(poolInput{kind: poolFinish, client: id}, clock.Add(1), poolOutput{ok: true})
					return 0, nil
				})
				if err != nil && !errors.Is(err, ErrPoolFull) {
					t.Errorf("TrySubmit: %v", err)
				}
				record(poolInput{kind: poolTry, client: c}, call, poolOutput{ok: err == nil})
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for last := clock.Load(); ; {
		select {
		case <-done:
			mustClose(t, p)
			return ops
		case <-time.After(10 * time.Second):
			if now := clock.Load(); now == last {
				t.Fatalf("the pool made no progress for 10s: %d operations so far", now)
			} else {
				last = now
			}
		}
	}
}

// TestPoolLinearizable checks histories of TrySubmit and of the tasks'
// starts and ends against the model: no admission past size+queue, no
// refusal below it, never more than size running.
func TestPoolLinearizable(t *testing.T) {
	rounds := 40
	if testing.Short() {
		rounds = 15
	}
	for seed := range uint64(12) {
		size, queue := 1+int(seed%3), int(seed%2)*2
		rng := rand.New(rand.NewPCG(seed, 17))
		p := New("model", WithSize(size), WithQueueSize(queue))
		ops := poolHistory(t, p, rng, 3, rounds)
		res, info := porcupine.CheckOperationsVerbose(poolModel(size, queue), ops, 30*time.Second)
		if res != porcupine.Ok {
			path := t.TempDir() + "/pool-history.html"
			_ = porcupine.VisualizePath(poolModel(size, queue), info, path)
			t.Fatalf("seed %d (size %d, queue %d): history of %d operations is %v against the model; see %s", seed, size, queue, len(ops), res, path)
		}
	}
}

// The model refuses what a pool must not do, so the check above can fail:
// a third task running on a pool of two, a refusal with room, an admission
// past the bound.
func TestPoolModelRejectsWrongHistories(t *testing.T) {
	op := func(client int, kind poolOpKind, ok bool, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: poolInput{kind: kind, client: client}, Call: call, Output: poolOutput{ok: ok}, Return: ret}
	}
	m := poolModel(2, 0)
	for name, ops := range map[string][]porcupine.Operation{
		"three running": {op(0, poolTry, true, 1, 2), op(0, poolTry, true, 3, 4), op(0, poolTry, true, 5, 6),
			op(1, poolStart, true, 7, 8), op(2, poolStart, true, 9, 10), op(3, poolStart, true, 11, 12)},
		"refused with room":       {op(0, poolTry, true, 1, 2), op(0, poolTry, false, 3, 4)},
		"admitted past the bound": {op(0, poolTry, true, 1, 2), op(0, poolTry, true, 3, 4), op(0, poolTry, true, 5, 6)},
	} {
		if porcupine.CheckOperations(m, ops) {
			t.Errorf("%s: the model accepts it", name)
		}
	}
	ok := []porcupine.Operation{op(0, poolTry, true, 1, 2), op(1, poolStart, true, 3, 4), op(1, poolFinish, true, 5, 6),
		op(0, poolTry, true, 7, 8), op(0, poolTry, true, 9, 10), op(0, poolTry, false, 11, 12)}
	if !porcupine.CheckOperations(m, ok) {
		t.Error("the model refuses a legal history (a slot given back after a finish)")
	}
}
