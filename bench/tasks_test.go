// Package bench compares loom with its peers, side by side in one run.
// Run ./run.sh for a benchstat table; each benchmark names the
// implementation as a sub-benchmark "impl=NAME" so benchstat can put the
// implementations in columns.
package bench

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sourcegraph/conc"
	"github.com/sourcegraph/conc/pool"
	"golang.org/x/sync/errgroup"

	"loom"
)

func noop(context.Context) error { return nil }

var errClockWentBack = errors.New("the monotonic clock went back")

// epoch is the origin of the reference clock reads in BenchmarkGroup.
var epoch = time.Now()

// batch is how many tasks one benchmark operation starts and waits for:
// a group per request, as a server would use one. Per-task cost is ns/op
// divided by batch.
const batch = 100

// BenchmarkGroup starts a group of 100 tasks that do nothing and waits for
// them: the per-task overhead of each way of running goroutines together.
func BenchmarkGroup(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=errgroup", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			g, _ := errgroup.WithContext(ctx)
			for range batch {
				g.Go(func() error { return nil })
			}
			g.Wait()
		}
	})
	// errgroup-clocks is errgroup plus what any registry that records
	// when each task started and ended must pay: two reads of the
	// monotonic clock per task. It is a reference, not a peer.
	b.Run("impl=errgroup-clocks", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			g, _ := errgroup.WithContext(ctx)
			for range batch {
				g.Go(func() error {
					start := time.Since(epoch)
					if time.Since(epoch) < start {
						return errClockWentBack
					}
					return nil
				})
			}
			g.Wait()
		}
	})
	// errgroup-listed is errgroup plus the least any registry of live
	// tasks must do: link each task into a shared list when it is
	// started (so that it shows before its goroutine runs) and unlink it
	// when it ends, on whichever core it ran, under the list's lock. The
	// list's nodes and functions are made once, so it allocates no more
	// than errgroup. A reference, not a peer. (Its list is its own, not
	// loom's registry.List: the bench module cannot import an internal
	// package, and a reference must not depend on what it measures.)
	b.Run("impl=errgroup-listed", func(b *testing.B) {
		b.ReportAllocs()
		live := new(liveList)
		nodes := make([]liveNode, batch)
		fns := make([]func() error, batch) // made once: no allocation per task beyond errgroup's
		for i := range fns {
			n := &nodes[i]
			fns[i] = func() error {
				live.remove(n)
				return nil
			}
		}
		for b.Loop() {
			g, _ := errgroup.WithContext(ctx)
			for i, fn := range fns {
				live.add(&nodes[i])
				g.Go(fn)
			}
			g.Wait()
		}
	})
	// errgroup-registry is errgroup plus the least a registry costs that
	// shows what loom's monitor shows of a group's tasks, each part done
	// with the fewest atomic operations Go's memory model allows: an ID,
	// a state word moved to running and to ended, a coarse start and end
	// time, the live list of errgroup-listed, a count of the running
	// tasks, and a copy of each ended task into a history ring whose slot
	// is locked while written. It does not reuse nodes, label goroutines
	// or report failures. A reference, not a peer: the floor under loom's
	// registry-on row.
	b.Run("impl=errgroup-registry", func(b *testing.B) {
		b.ReportAllocs()
		reg := new(floorRegistry)
		nodes := make([]floorNode, batch)
		fns := make([]func() error, batch)
		for i := range fns {
			n := &nodes[i]
			fns[i] = func() error {
				reg.running(n)
				reg.end(n)
				return nil
			}
		}
		for b.Loop() {
			g, _ := errgroup.WithContext(ctx)
			for i, fn := range fns {
				reg.start(&nodes[i])
				g.Go(fn)
			}
			g.Wait()
		}
	})
	// errgroup-slab is errgroup plus a registry built another way, to
	// see what the list-and-ring design of errgroup-registry costs: each
	// group keeps its tasks' records in a slab, a task takes the next slot
	// with one atomic add and no lock, IDs are taken 64 at a time, and the
	// history receives ended records 64 at a time, under one lock, when
	// the last task of a run of 64 slots ends. It counts the running
	// tasks as errgroup-registry does. Readers would walk the slab; the
	// history lags by up to 63 tasks of each group. A reference, not a
	// peer, and not a design loom has. errgroup-slab-exact copies each
	// ended record into the history at once, as errgroup-registry does,
	// so that the history does not lag, and still counts ended slots
	// (what would recycle a run of 64).
	for _, exact := range []bool{false, true} {
		name := "impl=errgroup-slab"
		if exact {
			name += "-exact"
		}
		b.Run(name, func(b *testing.B) { benchSlab(b, exact) })
	}
	b.Run("impl=raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var wg sync.WaitGroup
			for range batch {
				wg.Add(1)
				go func() { wg.Done() }()
			}
			wg.Wait()
		}
	})
	b.Run("impl=conc", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var wg conc.WaitGroup
			for range batch {
				wg.Go(func() {})
			}
			wg.Wait()
		}
	})
	b.Run("impl=loom", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			g := loom.NewGroup(ctx)
			for range batch {
				g.Go("", noop)
			}
			g.Wait()
		}
	})
	b.Run("impl=loom-noregistry", func(b *testing.B) {
		loom.SetRegistry(false)
		defer loom.SetRegistry(true)
		b.ReportAllocs()
		for b.Loop() {
			g := loom.NewGroup(ctx)
			for range batch {
				g.Go("", noop)
			}
			g.Wait()
		}
	})
}

// benchSlab is the errgroup-slab reference of BenchmarkGroup (see there).
func benchSlab(b *testing.B, exact bool) {
	ctx := context.Background()
	b.ReportAllocs()
	reg := &slabRegistry{exact: exact}
	slab := new(taskSlab)
	fns := make([]func() error, batch)
	for i := range fns {
		n := &slab.nodes[i]
		fns[i] = func() error {
			n.state.Store(1)
			slab.running.Add(1)
			reg.end(slab, n)
			return nil
		}
	}
	for b.Loop() {
		g, _ := errgroup.WithContext(ctx)
		slab.reset()
		for _, fn := range fns {
			reg.start(slab)
			g.Go(fn)
		}
		g.Wait()
	}
}

// liveList is errgroup-listed's registry: an intrusive doubly linked list
// under a lock, as small as a list of live tasks can be.
type liveList struct {
	mu   sync.Mutex
	head *liveNode
}

type liveNode struct{ prev, next *liveNode }

func (l *liveList) add(n *liveNode) {
	l.mu.Lock()
	n.prev, n.next = nil, l.head
	if l.head != nil {
		l.head.prev = n
	}
	l.head = n
	l.mu.Unlock()
}

func (l *liveList) remove(n *liveNode) {
	l.mu.Lock()
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		l.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	}
	n.prev, n.next = nil, nil
	l.mu.Unlock()
}

// floorRegistry is errgroup-registry's registry (see there).
type floorRegistry struct {
	ids     atomic.Uint64
	clock   atomic.Int64 // a coarse clock: what a ticking goroutine would store
	live    liveList
	nrun    atomic.Int32
	retired atomic.Uint64
	history [256]floorSlot
}

type floorNode struct {
	liveNode
	id             uint64
	state          atomic.Uint32
	created, ended int64
}

// floorSlot is one record of the history, on cache lines of its own.
type floorSlot struct {
	mu             sync.Mutex
	id             uint64
	state          uint32
	created, ended int64
	_              [128 - 40]byte
}

func (r *floorRegistry) start(n *floorNode) {
	n.id = r.ids.Add(1)
	n.created = r.clock.Load()
	n.state.Store(0) // pending
	r.live.add(&n.liveNode)
}

func (r *floorRegistry) running(n *floorNode) {
	n.state.Store(1)
	r.nrun.Add(1)
}

func (r *floorRegistry) end(n *floorNode) {
	n.ended = r.clock.Load()
	n.state.Store(2)
	r.live.remove(&n.liveNode)
	r.nrun.Add(-1)
	r.retire(n.id, n.state.Load(), n.created, n.ended)
}

// retire copies an ended record into the history ring.
func (r *floorRegistry) retire(id uint64, state uint32, created, ended int64) {
	s := &r.history[(r.retired.Add(1)-1)%uint64(len(r.history))]
	s.mu.Lock()
	s.id, s.state, s.created, s.ended = id, state, created, ended
	s.mu.Unlock()
}

// slabRegistry is errgroup-slab's registry (see there).
type slabRegistry struct {
	exact   bool // copy each ended record at once (floorRegistry's ring)
	ring    floorRegistry
	ids     atomic.Uint64
	clock   atomic.Int64
	mu      sync.Mutex // the history's
	retired uint64
	history [256]floorSlot
}

// taskSlab is one group's slab of task records.
type taskSlab struct {
	next, ended atomic.Int64
	running     atomic.Int32
	idBase      [batch/64 + 1]uint64 // the IDs of each run of 64 slots
	nodes       [batch]slabNode
}

type slabNode struct {
	id             uint64
	state          atomic.Uint32
	created, ended int64
}

func (s *taskSlab) reset() { s.next.Store(0); s.ended.Store(0) }

func (r *slabRegistry) start(s *taskSlab) {
	i := s.next.Add(1) - 1
	if i%64 == 0 {
		s.idBase[i/64] = r.ids.Add(64) - 64
	}
	n := &s.nodes[i]
	n.id = s.idBase[i/64] + uint64(i%64)
	n.created = r.clock.Load()
	n.state.Store(0)
}

func (r *slabRegistry) end(s *taskSlab, n *slabNode) {
	n.ended = r.clock.Load()
	n.state.Store(2)
	s.running.Add(-1)
	k := s.ended.Add(1)
	if r.exact {
		r.ring.retire(n.id, n.state.Load(), n.created, n.ended)
		return
	}
	if k%64 != 0 && k != int64(len(s.nodes)) {
		return
	}
	// The last of a run of 64 ends (or of the group): copy the run into
	// the history under one lock. (A real registry would copy the run of
	// slots that is complete, not the last 64 to end.)
	lo := (k - 1) / 64 * 64
	r.mu.Lock()
	for i := lo; i < k; i++ {
		m := &s.nodes[i]
		h := &r.history[r.retired%uint64(len(r.history))]
		h.id, h.state, h.created, h.ended = m.id, m.state.Load(), m.created, m.ended
		r.retired++
	}
	r.mu.Unlock()
}

// BenchmarkGroupSmall starts a group of 3 tasks that do nothing and waits
// for them: a group per request, fanning out to a few backends, where the
// group's own cost counts as much as its tasks'.
func BenchmarkGroupSmall(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=errgroup", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			g, _ := errgroup.WithContext(ctx)
			for range 3 {
				g.Go(func() error { return nil })
			}
			g.Wait()
		}
	})
	b.Run("impl=conc", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p := pool.New().WithErrors().WithContext(ctx)
			for range 3 {
				p.Go(noop)
			}
			p.Wait()
		}
	})
	b.Run("impl=loom", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			g := loom.NewGroup(ctx)
			for range 3 {
				g.Go("", noop)
			}
			g.Wait()
		}
	})
}

// BenchmarkTask starts one task that returns a value and waits for it: a
// future. raw is a goroutine sending on a channel; errgroup runs the
// function in a group of one and reads a captured variable; loom is
// loom.Go and Wait, which also registers the task and gives it a context
// of its own that Cancel or the monitor can cancel.
func BenchmarkTask(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ch := make(chan int, 1)
			go func() { ch <- 1 }()
			if <-ch != 1 {
				b.Fatal("wrong value")
			}
		}
	})
	b.Run("impl=errgroup", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			g, _ := errgroup.WithContext(ctx)
			var v int
			g.Go(func() error { v = 1; return nil })
			if g.Wait() != nil || v != 1 {
				b.Fatal("wrong value")
			}
		}
	})
	b.Run("impl=loom", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			t := loom.Go(ctx, "", func(context.Context) (int, error) { return 1, nil })
			if v, err := t.Wait(ctx); err != nil || v != 1 {
				b.Fatal("wrong value")
			}
		}
	})
}

// BenchmarkGroupLimit is BenchmarkGroup with at most 8 tasks at a time, the
// errgroup SetLimit / conc pool shape.
func BenchmarkGroupLimit(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=errgroup", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			g, _ := errgroup.WithContext(ctx)
			g.SetLimit(8)
			for range batch {
				g.Go(func() error { return nil })
			}
			g.Wait()
		}
	})
	b.Run("impl=conc", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p := pool.New().WithMaxGoroutines(8).WithErrors().WithContext(ctx)
			for range batch {
				p.Go(noop)
			}
			p.Wait()
		}
	})
	b.Run("impl=loom", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			g := loom.NewGroup(ctx, loom.WithLimit(8))
			for range batch {
				g.Go("", noop)
			}
			g.Wait()
		}
	})
}

// BenchmarkGather runs 100 functions returning an int and collects the
// results in order.
func BenchmarkGather(b *testing.B) {
	ctx := context.Background()
	fns := make([]func(context.Context) (int, error), batch)
	for i := range fns {
		fns[i] = func(context.Context) (int, error) { return i, nil }
	}
	b.Run("impl=errgroup", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out := make([]int, batch)
			g, gctx := errgroup.WithContext(ctx)
			for i, fn := range fns {
				g.Go(func() error {
					v, err := fn(gctx)
					out[i] = v
					return err
				})
			}
			if err := g.Wait(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=conc", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p := pool.NewWithResults[int]().WithErrors().WithContext(ctx).WithCancelOnError()
			for _, fn := range fns {
				p.Go(fn)
			}
			if _, err := p.Wait(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=loom", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := loom.Gather(ctx, fns...); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMillionTasks holds 1,000,000 blocked tasks at once and reports
// the memory they take, per task (heap plus goroutine stacks).
func BenchmarkMillionTasks(b *testing.B) {
	const n = 1_000_000
	measure := func(b *testing.B, start func(release <-chan struct{}), wait func()) {
		for b.Loop() {
			release := make(chan struct{})
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start(release)
			runtime.ReadMemStats(&after)
			close(release)
			wait()
			b.ReportMetric(float64(after.HeapInuse+after.StackInuse-before.HeapInuse-before.StackInuse)/n, "B/task")
		}
	}
	b.Run("impl=errgroup", func(b *testing.B) {
		var g *errgroup.Group
		measure(b, func(release <-chan struct{}) {
			g = new(errgroup.Group)
			for range n {
				g.Go(func() error { <-release; return nil })
			}
		}, func() { g.Wait() })
	})
	b.Run("impl=raw", func(b *testing.B) {
		var wg sync.WaitGroup
		measure(b, func(release <-chan struct{}) {
			for range n {
				wg.Add(1)
				go func() { <-release; wg.Done() }()
			}
		}, wg.Wait)
	})
	b.Run("impl=loom", func(b *testing.B) {
		var g *loom.Group
		measure(b, func(release <-chan struct{}) {
			g = loom.NewGroup(context.Background())
			for range n {
				g.Go("", func(context.Context) error { <-release; return nil })
			}
		}, func() { g.Wait() })
	})
}
