package registry

import (
	"cmp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// walk calls f for every live node, published ones first, then those their
// containers own, until f returns false.
func walk(f func(*Node) bool) {
	walkOwned(f, func(Container) bool { return true })
}

// walkOwned calls f for every published node, then for the nodes owned by
// the containers that want accepts, until f returns false.
func walkOwned(f func(*Node) bool, want func(Container) bool) {
	var cs []Container
	for _, shards := range []*[shards]shard{&owners, &root} {
		for i := range shards {
			s := &shards[i]
			s.mu.Lock()
			more := true
			for n := s.list.head; n != nil && more; n = n.next {
				more = f(n)
				if c := n.children(); c != nil && want(c) {
					cs = append(cs, c)
				}
			}
			s.mu.Unlock()
			if !more {
				return
			}
		}
	}
	// Walk the containers after releasing the shard locks, so that a
	// container never waits on a shard while holding its own lock.
	for _, c := range cs {
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

// Filter selects live nodes: by kind ("task", "group", "scope"), state
// (a State's name), name prefix and parent (when HasParent), in the order
// Sort names, after the cursor (After, AfterKey), at most Limit of them
// (0: all).
type Filter struct {
	Kind, State, NamePrefix string
	Parent                  uint64
	HasParent               bool
	// Sort is the order: SortID (also ""), SortNewest, SortName or
	// SortState; the last two break ties by ID.
	Sort string
	// After, when not 0, is the cursor: the ID of the last node of the
	// page before. In the orders by name and by state, AfterKey is that
	// node's name or state.
	After    uint64
	AfterKey string
	Limit    int
	// Done, if not nil, stops the walk when it is closed (the request was
	// cancelled): Select then returns what it has, and ok false.
	Done <-chan struct{}
}

// stopped reports, every 1,024 calls, whether f.Done is closed.
func (f *Filter) stopped(seen *int) bool {
	if f.Done == nil {
		return false
	}
	if *seen++; *seen%1024 != 0 {
		return false
	}
	select {
	case <-f.Done:
		return true
	default:
		return false
	}
}

// The orders of Filter.Sort.
const (
	SortID     = "id"     // by ID, the oldest first
	SortNewest = "newest" // by ID, the newest first
	SortName   = "name"   // by name, then ID
	SortState  = "state"  // by state's name, then ID
)

// sortKey is where a node stands in an order.
type sortKey struct {
	key string
	id  uint64
}

// key returns where n stands in f's order.
func (f *Filter) key(n *Node) sortKey {
	switch f.Sort {
	case SortName:
		return sortKey{n.name, n.id}
	case SortState:
		return sortKey{n.State().String(), n.id}
	}
	return sortKey{id: n.id}
}

// infoKey is key for a copy.
func (f *Filter) infoKey(in *Info) sortKey {
	switch f.Sort {
	case SortName:
		return sortKey{in.Name, in.ID}
	case SortState:
		return sortKey{in.State, in.ID}
	}
	return sortKey{id: in.ID}
}

// compare orders two keys in f's order.
func (f *Filter) compare(a, b sortKey) int {
	if f.Sort == SortNewest {
		return cmp.Compare(b.id, a.id)
	}
	if c := strings.Compare(a.key, b.key); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

func (f *Filter) match(n *Node) bool {
	return (f.After == 0 || f.compare(f.key(n), sortKey{f.AfterKey, f.After}) > 0) &&
		(f.Kind == "" || n.kind.String() == f.Kind) && (f.State == "" || n.State().String() == f.State) &&
		(f.NamePrefix == "" || strings.HasPrefix(n.name, f.NamePrefix)) && (!f.HasParent || n.parent == f.Parent)
}

// Select returns the live nodes that pass f, in f's order, at most
// f.Limit, and how many passed in all (as far as it got, if f.Done
// closed). One walk copies the nodes that pass while they are within the
// limit; only when more pass than the limit allows does a second walk copy
// the first in the order (a node that ended between the two is left out).
func Select(f Filter) (out []Info, total int) {
	first := firstK{f: &f, k: f.Limit} // the first Limit in the order, when there is a limit
	seen := 0
	walk := walk
	if f.HasParent {
		// Only the parent's container, if it has one, holds nodes with
		// that parent beside the published ones.
		c := containerOf(f.Parent)
		walk = func(fn func(*Node) bool) { walkOwned(fn, func(o Container) bool { return o == c }) }
	}
	walk(func(n *Node) bool {
		if f.match(n) {
			total++
			if f.Limit > 0 {
				first.add(f.key(n))
			}
			if f.Limit <= 0 || len(out) < f.Limit {
				out = append(out, n.Info())
			}
		}
		return !f.stopped(&seen)
	})
	if f.Limit > 0 && total > f.Limit {
		keep := make(map[uint64]bool, f.Limit)
		for _, k := range first.h {
			keep[k.id] = true
		}
		out = out[:0]
		walk(func(n *Node) bool {
			if keep[n.id] {
				out = append(out, n.Info())
			}
			return !f.stopped(&seen)
		})
	}
	sort.Slice(out, func(i, j int) bool { return f.compare(f.infoKey(&out[i]), f.infoKey(&out[j])) < 0 })
	return out, total
}

// firstK keeps the first k keys in f's order of those it is given, in a
// heap whose root is the last of them: a node past the root costs one
// comparison, and a listing of 1,000 of a million nodes keeps 1,000 keys,
// not a million.
type firstK struct {
	f *Filter
	k int
	h []sortKey
}

// add offers x.
func (t *firstK) add(x sortKey) {
	if len(t.h) < t.k {
		t.h = append(t.h, x)
		for i := len(t.h) - 1; i > 0; {
			p := (i - 1) / 2
			if t.f.compare(t.h[i], t.h[p]) <= 0 {
				break
			}
			t.h[i], t.h[p] = t.h[p], t.h[i]
			i = p
		}
		return
	}
	if t.f.compare(x, t.h[0]) >= 0 {
		return
	}
	t.h[0] = x
	for i := 0; ; {
		last, l, r := i, 2*i+1, 2*i+2
		if l < len(t.h) && t.f.compare(t.h[l], t.h[last]) > 0 {
			last = l
		}
		if r < len(t.h) && t.f.compare(t.h[r], t.h[last]) > 0 {
			last = r
		}
		if last == i {
			return
		}
		t.h[i], t.h[last] = t.h[last], t.h[i]
		i = last
	}
}

// Counts returns how many live nodes there are of each kind and state,
// from the counts the lists keep: it walks the containers, not their
// nodes. A task counts as pending until MarkRunning, then as running until
// it is removed (the moment between its end and its removal included);
// a group or scope counts as running while it is published.
func Counts() map[[2]string]int {
	out := map[[2]string]int{}
	tasks := func(live, running int) {
		if running > 0 {
			out[[2]string{KindTask.String(), Running.String()}] += running
		}
		if live > running {
			out[[2]string{KindTask.String(), Pending.String()}] += live - running
		}
	}
	for i := range root {
		s := &root[i]
		s.mu.Lock()
		live, running := s.list.Counts()
		s.mu.Unlock()
		tasks(live, running)
	}
	for i := range owners {
		s := &owners[i]
		s.mu.Lock()
		for k, n := range s.byKind {
			if n > 0 {
				out[[2]string{Kind(k).String(), Running.String()}] += int(n)
			}
		}
		s.mu.Unlock()
	}
	for _, c := range containers() {
		tasks(c.Counts())
	}
	return out
}

// Found is a live node as Lookup saw it: a copy of its figures and, for a
// node with a context of its own, the way to cancel it. It holds no pointer
// to the node, which may be reused once it has ended.
type Found struct {
	Info   Info
	pc     uintptr
	cancel func(error)
}

// PC returns what the node's "where created" comes from: the entry of its
// function, or for a task that wraps the user's (a pipeline stage's
// worker, a remote call) the user's call into loom; 0 if unknown.
func (f Found) PC() uintptr { return f.pc }

// Cancel cancels the node's own context with cause and reports whether the
// node has one to cancel (a group's member has not: its group does).
func (f Found) Cancel(cause error) bool {
	if f.cancel == nil {
		return false
	}
	f.cancel(cause)
	return true
}

// Lookup returns the live node with the given ID, and whether there is one.
//
// The registry keeps no index by ID: a map from ID to node would cost
// every task more than the rest of its registration (measured: a map in
// each list took a group task from 1.65x to 2.2x errgroup), and Lookup
// serves a person's click. It walks only where the node can be: a
// top-level node is in the root shard its ID picks; a group's task is in
// the one of its group's lists that its ID picks. parent, when not 0, is
// the node's parent as a listing showed it (the monitor's page and loom
// top pass it): then only that parent's list is walked, a few nodes at
// most in the common case. A wrong parent costs the walk without it.
func Lookup(id, parent uint64) (Found, bool) {
	if id == 0 {
		return Found{}, false
	}
	var found Found
	ok := false
	take := func(n *Node) { found, ok = Found{Info: n.Info(), pc: n.pc, cancel: n.cancel}, true }
	for _, s := range []*shard{&root[id%shards], &owners[id%shards]} {
		s.mu.Lock()
		if n := s.list.Find(id); n != nil {
			take(n)
		}
		s.mu.Unlock()
		if ok {
			return found, true
		}
	}
	if parent != 0 {
		if c := containerOf(parent); c != nil && c.Find(id, take) {
			return found, true
		}
	}
	for _, c := range containers() {
		if c.Find(id, take) {
			return found, true
		}
	}
	return Found{}, false
}

// containerOf returns the container of the top-level node with the given
// ID, or nil if there is none.
func containerOf(id uint64) Container {
	s := &owners[id%shards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.list.Find(id); n != nil {
		return n.children()
	}
	return nil
}

// containers returns the containers of all top-level nodes.
func containers() []Container {
	var out []Container
	for i := range owners {
		s := &owners[i]
		s.mu.Lock()
		for n := s.list.head; n != nil; n = n.next {
			if c := n.children(); c != nil {
				out = append(out, c)
			}
		}
		s.mu.Unlock()
	}
	return out
}

// HistorySize is how many recent terminations the registry keeps.
const HistorySize = 256

// historySlot holds one termination. Each has a lock of its own and two
// cache lines, so two tasks ending at once on different cores do not meet.
type historySlot struct {
	mu sync.Mutex
	r  record
	_  [128 - 8 - unsafe.Sizeof(record{})]byte
}

var (
	history  [HistorySize]historySlot
	retired  atomic.Uint64
	eventsMu sync.Mutex
	events   []Event
	hook     atomic.Pointer[func(Event)]
)

// Retire records a finished node among the recent terminations, as a copy:
// the node may be reused as soon as Retire returns. The oldest record is
// overwritten.
func Retire(n *Node) {
	if n.id == 0 {
		return
	}
	s := &history[(retired.Add(1)-1)%HistorySize]
	s.mu.Lock()
	n.recordInto(&s.r)
	s.mu.Unlock()
}

// Totals returns how many tasks, groups and scopes have been started and
// have ended since the process began (while the registry was on). It
// reads counters the registry keeps anyway: IDs handed out, less those of
// resources, and terminations recorded.
func Totals() (started, ended uint64) {
	return nextID.Load() - resourcesMade.Load(), retired.Load()
}

// Terminated returns the most recent terminations, newest first.
func Terminated() []Info {
	total := retired.Load()
	k := min(total, HistorySize)
	out := make([]Info, 0, k)
	for i := uint64(0); i < k; i++ {
		s := &history[(total-1-i)%HistorySize]
		s.mu.Lock()
		r := s.r
		s.mu.Unlock()
		if r.id != 0 && r.state.Terminal() {
			out = append(out, r.info())
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
