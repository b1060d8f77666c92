// Package registry is the live registry every loom component reports into,
// and that the monitor reads.
//
// It is written by hand because nothing off the shelf fits the hot path:
// registering a task must cost a few atomic operations and short locks,
// with no map insertion and no allocation beyond the node itself. Nodes are
// therefore linked intrusively into lists: top-level nodes (groups, scopes,
// standalone tasks) into a sharded root, the tasks of a group into one of
// the group's own few lists, each with its lock (see Container).
//
// Readers (Snapshot, Lookup, Terminated, Events) take the same locks
// briefly and copy what they need; they never block a writer for long, and
// nothing they return points at a node. The history of terminations keeps
// copies too (Retire), so once a node is out of its list and retired, its
// owner may reuse it: a group reuses the nodes of the tasks nobody holds a
// handle to.
package registry

import (
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Kind says what a node is.
type Kind uint8

// The kinds of node.
const (
	KindTask Kind = iota + 1
	KindGroup
	KindScope
	KindSemaphore
	KindLock
	KindEvent
	KindCond
	KindBarrier
	KindQueue
	KindPool
	KindRetry
	KindBudget
	KindBreaker
	KindBulkhead
	KindRateLimit
	KindHedge
	KindLoop
	KindPipeline
	KindService
	KindDistQueue
	KindDistPool
)

// String returns the kind's name as the monitor shows it.
func (k Kind) String() string {
	switch k {
	case KindTask:
		return "task"
	case KindGroup:
		return "group"
	case KindScope:
		return "scope"
	case KindSemaphore:
		return "semaphore"
	case KindLock:
		return "lock"
	case KindEvent:
		return "event"
	case KindCond:
		return "cond"
	case KindBarrier:
		return "barrier"
	case KindQueue:
		return "queue"
	case KindPool:
		return "pool"
	case KindRetry:
		return "retry"
	case KindBudget:
		return "retry-budget"
	case KindBreaker:
		return "breaker"
	case KindBulkhead:
		return "bulkhead"
	case KindRateLimit:
		return "rate-limit"
	case KindHedge:
		return "hedge"
	case KindLoop:
		return "loop"
	case KindPipeline:
		return "pipeline-stage"
	case KindService:
		return "service"
	case KindDistQueue:
		return "dist-queue"
	case KindDistPool:
		return "dist-pool"
	}
	return "unknown"
}

// State is the life-cycle state of a task, group or scope.
type State uint32

// The states. A node moves forward only: Pending, Running, then one of the
// three terminal states.
const (
	// Pending: created, its function has not started yet.
	Pending State = iota
	// Running: its function is running.
	Running
	// Done: finished without error.
	Done
	// Failed: finished with an error that was not a cancellation, or panicked.
	Failed
	// Cancelled: its context was cancelled and it returned the cancellation.
	Cancelled
)

// String returns the state's lower-case name.
func (s State) String() string {
	switch s {
	case Pending:
		return "pending"
	case Running:
		return "running"
	case Done:
		return "done"
	case Failed:
		return "failed"
	case Cancelled:
		return "cancelled"
	}
	return "unknown"
}

// Terminal reports whether s is Done, Failed or Cancelled.
func (s State) Terminal() bool { return s >= Done }

var (
	enabled atomic.Bool
	debug   atomic.Bool
	epoch   = time.Now()
	nextID  atomic.Uint64
)

func init() {
	enabled.Store(os.Getenv("LOOM_REGISTRY") != "off")
	debug.Store(os.Getenv("LOOM_DEBUG") == "1")
}

// Enabled reports whether new nodes are published. It is on unless the
// environment has LOOM_REGISTRY=off or SetEnabled(false) was called.
func Enabled() bool { return enabled.Load() }

// SetEnabled turns publication of new nodes on or off. Nodes already
// published stay until they end.
func SetEnabled(on bool) { enabled.Store(on) }

// Debug reports whether debug checks are on (LOOM_DEBUG=1 or SetDebug).
func Debug() bool { return debug.Load() }

// SetDebug turns debug checks on or off.
func SetDebug(on bool) { debug.Store(on) }

// The registry's clock. Millisecond resolution is enough for the task
// list, ages and the history of terminations, and a clock read costs
// 20-50 ns on a VM, twice per task: so while tasks are being made and
// ended, a goroutine keeps a coarse time, refreshed every millisecond, and
// now reads it with one atomic load. The goroutine stops after 100 ms in
// which nobody read it; it is not started under a testing/synctest
// bubble's fake clock (whose goroutines must all end with the bubble).
var (
	coarse  atomic.Int64 // ns since epoch, while ticking
	ticking atomic.Bool
	used    atomic.Bool // now read coarse since the last tick
)

// coarseIdle is how many idle ticks stop the coarse clock.
const coarseIdle = 100

// now returns the time since the registry's epoch, to the millisecond
// while tasks come and go, to the nanosecond otherwise. Two goroutines may
// see it a few microseconds apart; a node's end is never before its start
// (Finish clamps it).
func now() int64 {
	if ticking.Load() {
		if !used.Load() {
			used.Store(true)
		}
		return coarse.Load()
	}
	t := int64(time.Since(epoch))
	if t <= 0 {
		return t // a synctest bubble's clock: no coarse clock
	}
	for c := coarse.Load(); t > c && !coarse.CompareAndSwap(c, t); c = coarse.Load() {
	}
	if ticking.CompareAndSwap(false, true) {
		go tick()
	}
	return t
}

// tick refreshes the coarse clock every millisecond until it goes unread
// for coarseIdle ticks.
func tick() {
	for idle := 0; idle < coarseIdle; {
		time.Sleep(time.Millisecond)
		if t := int64(time.Since(epoch)); t > coarse.Load() {
			coarse.Store(t)
		}
		if used.Swap(false) {
			idle = 0
		} else {
			idle++
		}
	}
	ticking.Store(false)
}

// wall converts a value from now to wall-clock time.
func wall(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return epoch.Add(time.Duration(ns))
}

const shards = 16

// A shard is one of the root's lists of top-level nodes, with its lock and
// how many of its nodes there are of each kind.
type shard struct {
	mu     sync.Mutex
	list   List
	byKind [KindScope + 1]int32   // groups and scopes, in owners
	_      [64 - 8 - 24 - 16]byte // keep shards on separate cache lines
}

// The root: top-level nodes that own none (tasks of their own, prepared
// tasks) in root, those that own others (groups, scopes) in owners, so
// that what walks the containers (Counts, Lookup) need not walk the tasks.
var root, owners [shards]shard

// shardOf returns the shard that holds, or will hold, the published n.
func shardOf(n *Node) *shard {
	if n.children() != nil {
		return &owners[n.id%shards]
	}
	return &root[n.id%shards]
}

// Publish links n into the root registry. It is a no-op for a node that was
// initialised while the registry was off. A node that owns others must
// have its container (SetChildren) before; one that owns none is a task,
// counted by MarkRunning.
func Publish(n *Node) {
	if n.id == 0 {
		return
	}
	s := shardOf(n)
	s.mu.Lock()
	s.list.Add(n)
	if int(n.kind) < len(s.byKind) {
		s.byKind[n.kind]++
	}
	s.mu.Unlock()
}

// MarkRunning moves n, a published task, to Running, as List.MarkRunning
// does for the lists of a container.
func MarkRunning(n *Node) { shardOf(n).list.MarkRunning(n) }

// Unpublish removes n from the root registry, records it among the recent
// terminations and returns. n must have been published, or never initialised
// with an id.
func Unpublish(n *Node) {
	if n.id == 0 {
		return
	}
	s := shardOf(n)
	s.mu.Lock()
	s.list.Remove(n)
	if int(n.kind) < len(s.byKind) {
		s.byKind[n.kind]--
	}
	s.mu.Unlock()
	Retire(n)
}
