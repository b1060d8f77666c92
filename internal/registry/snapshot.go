package registry

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// walk calls f for every live node, published ones first, then those their
// containers own, until f returns false.
func walk(f func(*Node) bool) {
	var owners []Container
	for i := range root {
		s := &root[i]
		s.mu.Lock()
		more := true
		for n := s.list.head; n != nil && more; n = n.next {
			more = f(n)
			if c := n.children(); c != nil {
				owners = append(owners, c)
			}
		}
		s.mu.Unlock()
		if !more {
			return
		}
	}
	// Walk the containers after releasing the shard locks, so that a
	// container never waits on a shard while holding its own lock.
	for _, c := range owners {
		more := true
		c.Walk(func(n *Node) {
			if more {
				more = f(n)
			}
		})
		if !more {
			return
		}
	}
}

// Snapshot returns the live nodes: every published node and every node its
// container owns, ordered by ID.
func Snapshot() []Info {
	var out []Info
	walk(func(n *Node) bool {
		out = append(out, n.Info())
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Lookup returns the live node with the given ID, or nil.
func Lookup(id uint64) *Node {
	if id == 0 {
		return nil
	}
	var found *Node
	walk(func(n *Node) bool {
		if n.id == id {
			found = n
		}
		return found == nil
	})
	return found
}

// HistorySize is how many recent terminations the registry keeps.
const HistorySize = 256

var (
	history  [HistorySize]atomic.Pointer[Node]
	retired  atomic.Uint64
	eventsMu sync.Mutex
	events   []Event
	hook     atomic.Pointer[func(Event)]
)

// Retire records a finished node among the recent terminations. It costs one
// atomic add and one atomic store; the oldest record is overwritten.
func Retire(n *Node) {
	if n.id == 0 {
		return
	}
	i := retired.Add(1) - 1
	history[i%HistorySize].Store(n)
}

// Terminated returns the most recent terminations, newest first.
func Terminated() []Info {
	total := retired.Load()
	k := min(total, HistorySize)
	out := make([]Info, 0, k)
	for i := uint64(0); i < k; i++ {
		if n := history[(total-1-i)%HistorySize].Load(); n != nil && n.State().Terminal() {
			out = append(out, n.Info())
		}
	}
	return out
}

// Event is a finding of a debug check.
type Event struct {
	Time time.Time `json:"time"`
	// Check names the check: "unretrieved-error", "leaked-task", ...
	Check   string `json:"check"`
	Message string `json:"message"`
	Node    Info   `json:"node"`
}

// EventsSize is how many debug events the registry keeps.
const EventsSize = 256

// Report records a debug event and passes it to the hook, if one is set.
func Report(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	eventsMu.Lock()
	if len(events) == EventsSize {
		copy(events, events[1:])
		events = events[:EventsSize-1]
	}
	events = append(events, ev)
	eventsMu.Unlock()
	if h := hook.Load(); h != nil {
		(*h)(ev)
	}
}

// Events returns the recorded debug events, oldest first.
func Events() []Event {
	eventsMu.Lock()
	defer eventsMu.Unlock()
	return append([]Event(nil), events...)
}

// SetHook installs f to be called with each debug event (nil removes it) and
// returns the hook it replaced.
func SetHook(f func(Event)) func(Event) {
	var old *func(Event)
	if f == nil {
		old = hook.Swap(nil)
	} else {
		old = hook.Swap(&f)
	}
	if old == nil {
		return nil
	}
	return *old
}
