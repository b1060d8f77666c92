package loom

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/anishathalye/porcupine"
)

// The Queue's concurrent histories are checked against a sequential model
// with porcupine: every history that goroutines racing on a real Queue
// produce must be explainable as the calls happening one at a time, each
// at some instant between its call and its return. This pins issue 13
// item 2: Shutdown(true) on a FIFO queue drained item by item while
// lock-free Gets went on taking, so its list had gaps, and a Get begun
// after a Put had seen the shutdown could still receive an item.

type qOpKind uint8

const (
	opPut qOpKind = iota
	opTryPut
	opGet
	opTryGet
	opShutdown
	opShutdownNow
)

func (k qOpKind) String() string {
	return [...]string{"Put", "TryPut", "Get", "TryGet", "Shutdown(false)", "Shutdown(true)"}[k]
}

type qInput struct {
	kind qOpKind
	v    int
}

// qOutput is what a call returned: an item, a sentinel error's name, or
// Shutdown's list.
type qOutput struct {
	v    int
	err  string
	left []int
}

func errName(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrQueueShutdown):
		return "shutdown"
	case errors.Is(err, ErrQueueFull):
		return "full"
	case errors.Is(err, ErrQueueEmpty):
		return "empty"
	}
	return err.Error()
}

// qState is the model's state; it is never changed in place.
type qState struct {
	items  []int
	closed bool
}

// queueModel is the sequential queue of the given order and capacity.
func queueModel(order queueOrder, capacity int) porcupine.Model {
	// next returns the index of the item Get gives out next.
	next := func(items []int) int {
		switch order {
		case lifo:
			return len(items) - 1
		case priority:
			return slices.Index(items, slices.Min(items))
		}
		return 0
	}
	// inGetOrder lists the items in the order Get would give them out.
	inGetOrder := func(items []int) []int {
		out := slices.Clone(items)
		switch order {
		case lifo:
			slices.Reverse(out)
		case priority:
			slices.Sort(out)
		}
		return out
	}
	return porcupine.Model{
		Init: func() any { return qState{} },
		Step: func(state, input, output any) (bool, any) {
			s, in, out := state.(qState), input.(qInput), output.(qOutput)
			full := capacity > 0 && len(s.items) >= capacity
			switch in.kind {
			case opPut, opTryPut:
				switch out.err {
				case "":
					if s.closed || full {
						return false, s
					}
					return true, qState{append(slices.Clone(s.items), in.v), false}
				case "shutdown":
					return s.closed, s
				case "full":
					return in.kind == opTryPut && !s.closed && full, s
				}
			case opGet, opTryGet:
				switch out.err {
				case "":
					if len(s.items) == 0 {
						return false, s
					}
					i := next(s.items)
					if s.items[i] != out.v {
						return false, s
					}
					return true, qState{slices.Delete(slices.Clone(s.items), i, i+1), s.closed}
				case "shutdown":
					return s.closed && len(s.items) == 0, s
				case "empty":
					return in.kind == opTryGet && !s.closed && len(s.items) == 0, s
				}
			case opShutdown:
				return len(out.left) == 0, qState{s.items, true}
			case opShutdownNow:
				return slices.Equal(out.left, inGetOrder(s.items)), qState{nil, true}
			}
			return false, s
		},
		Equal: func(a, b any) bool {
			x, y := a.(qState), b.(qState)
			return x.closed == y.closed && slices.Equal(x.items, y.items)
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(qInput), output.(qOutput)
			switch in.kind {
			case opPut, opTryPut:
				return fmt.Sprintf("%v(%d) -> %q", in.kind, in.v, out.err)
			case opGet, opTryGet:
				return fmt.Sprintf("%v -> %d %q", in.kind, out.v, out.err)
			}
			return fmt.Sprintf("%v -> %v", in.kind, out.left)
		},
	}
}

// recordHistory runs clients goroutines of random calls on q. Client 0
// calls only what never waits and ends with a Shutdown, which releases any
// call still waiting; the others mix waiting and non-waiting calls.
func recordHistory(q *Queue[int], rng *rand.Rand, clients, calls int) []porcupine.Operation {
	var clock atomic.Int64
	var mu sync.Mutex
	var ops []porcupine.Operation
	ctx := context.Background()
	do := func(client int, in qInput) {
		call := clock.Add(1)
		var out qOutput
		switch in.kind {
		case opPut:
			out.err = errName(q.Put(ctx, in.v))
		case opTryPut:
			out.err = errName(q.TryPut(in.v))
		case opGet:
			v, err := q.Get(ctx)
			out.v, out.err = v, errName(err)
		case opTryGet:
			v, err := q.TryGet()
			out.v, out.err = v, errName(err)
		case opShutdown:
			out.left = q.Shutdown(false)
		case opShutdownNow:
			out.left = q.Shutdown(true)
		}
		ret := clock.Add(1)
		mu.Lock()
		ops = append(ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
		mu.Unlock()
	}
	plans := make([][]qInput, clients)
	for c := range plans {
		for i := range calls {
			v := c*calls + i + 1
			kind := qOpKind(rng.IntN(4))
			if c == 0 {
				kind = []qOpKind{opTryPut, opTryGet}[rng.IntN(2)]
			}
			plans[c] = append(plans[c], qInput{kind, v})
		}
	}
	plans[0] = append(plans[0], qInput{kind: []qOpKind{opShutdown, opShutdownNow}[rng.IntN(2)]})
	var wg sync.WaitGroup
	for c, plan := range plans {
		wg.Go(func() {
			for _, in := range plan {
				do(c, in)
			}
		})
	}
	wg.Wait()
	return ops
}

func TestQueueLinearizable(t *testing.T) {
	trials := 3000
	if testing.Short() {
		trials = 500
	}
	kinds := []struct {
		name     string
		order    queueOrder
		capacity int
		make     func() *Queue[int]
	}{
		{"fifo", fifo, 3, func() *Queue[int] { return NewQueue[int]("q", 3) }},
		{"fifo-unbounded", fifo, 0, func() *Queue[int] { return NewQueue[int]("q", 0) }},
		{"lifo", lifo, 3, func() *Queue[int] { return NewLIFOQueue[int]("q", 3) }},
		{"priority", priority, 3, func() *Queue[int] { return NewPriorityQueue("q", 3, cmp.Less[int]) }},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			model := queueModel(k.order, k.capacity)
			rng := rand.New(rand.NewPCG(1, uint64(k.order)+uint64(k.capacity)))
			for trial := range trials {
				ops := recordHistory(k.make(), rng, 4, 6)
				res, _ := porcupine.CheckOperationsVerbose(model, ops, 0)
				if res != porcupine.Ok {
					var lines []string
					slices.SortFunc(ops, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
					for _, op := range ops {
						lines = append(lines, fmt.Sprintf("  client %d [%d,%d] %s", op.ClientId, op.Call, op.Return, model.DescribeOperation(op.Input, op.Output)))
					}
					t.Fatalf("trial %d: history not linearizable (%v):\n%s", trial, res, strings.Join(lines, "\n"))
				}
			}
		})
	}
}
