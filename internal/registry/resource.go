package registry

import (
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"weak"
)

// A Resource is a long-lived, named object the monitor shows beside the
// tasks: a semaphore, a lock, a queue, later pools, loops and breakers. It
// has no life cycle of its own; it stays registered until its object is
// garbage collected or Untrack is called.
//
// The registry holds only a weak reference to the object, so registering a
// primitive never keeps it alive: a cleanup unlinks the resource once the
// object is gone.
type Resource struct {
	id      uint64
	kind    Kind
	name    string
	created int64
	// report fills r from the object; it returns false once the object has
	// been collected.
	report     func(r *Figures) bool
	prev, next *Resource
	linked     bool
}

// Stat is one figure of a resource, such as a semaphore's "held" count.
// A gauge (the default) says how much there is now; a counter only grows
// (a count since the resource was made); a histogram counts durations by
// bucket, its Value being the number of them; a display figure (a
// quantile, say) is for people and is not exported to Prometheus, which
// gets the histogram instead.
type Stat struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	// Type is "", for a gauge, or "counter", "histogram", "display" or
	// "enum".
	Type string `json:"type,omitempty"`
	// Hist is a histogram's buckets.
	Hist *Hist `json:"histogram,omitempty"`
	// Values names an enum's values; Value is the index of the current one.
	Values []string `json:"values,omitempty"`
}

// The types of a Stat.
const (
	Gauge     = ""
	Counter   = "counter"
	Histogram = "histogram"
	Display   = "display"
	Enum      = "enum"
)

// Hist is a histogram of durations: Counts[i] observations at most
// Bounds[i] seconds (and above Bounds[i-1]); Counts has one more bucket
// than Bounds, the last, with no upper bound. Sum is their total in
// seconds.
type Hist struct {
	Bounds []float64 `json:"bounds"`
	Counts []uint64  `json:"counts"`
	Sum    float64   `json:"sum"`
}

// Figures is what a resource says about itself when the monitor asks.
type Figures struct {
	stats   []Stat
	waiters []Waiter
	parts   []Part
}

// Part is one named part of a resource that the monitor lists under it,
// such as one remote worker of a distributed pool: its state in a word
// ("alive", "lost") and its own figures.
type Part struct {
	Name  string `json:"name"`
	State string `json:"state,omitempty"`
	Stats []Stat `json:"stats,omitempty"`
}

// MaxParts bounds the parts one resource reports; Part drops the ones
// past it (the resource's own figures should count them all).
const MaxParts = 256

// Waiter is one goroutine waiting on a resource: the task or group it
// belongs to (0 for a goroutine that is not a loom task) and since when.
type Waiter struct {
	ID    uint64    `json:"id"`
	Since time.Time `json:"since"`
}

// Stat adds a named gauge: how much there is now.
func (r *Figures) Stat(name string, v float64) { r.stats = append(r.stats, Stat{Name: name, Value: v}) }

// Counter adds a named count that only grows over the resource's life.
func (r *Figures) Counter(name string, v float64) {
	r.stats = append(r.stats, Stat{Name: name, Value: v, Type: Counter})
}

// Display adds a figure for people only, such as a quantile that a
// histogram also gives: the monitor shows it, Prometheus does not get it.
func (r *Figures) Display(name string, v float64) {
	r.stats = append(r.stats, Stat{Name: name, Value: v, Type: Display})
}

// Enum adds a figure that is one of a few named values (a breaker's
// "closed", "open" or "half-open"): values[current].
func (r *Figures) Enum(name string, current int, values ...string) {
	r.stats = append(r.stats, Stat{Name: name, Value: float64(current), Type: Enum, Values: values})
}

// Histogram adds a histogram of durations; its value is how many there
// are.
func (r *Figures) Histogram(name string, h Hist) {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	r.stats = append(r.stats, Stat{Name: name, Value: float64(n), Type: Histogram, Hist: &h})
}

// Part adds a named part with its state and figures (at most MaxParts).
func (r *Figures) Part(name, state string, stats ...Stat) {
	if len(r.parts) < MaxParts {
		r.parts = append(r.parts, Part{Name: name, State: state, Stats: stats})
	}
}

// Waiter adds a waiting task or group by its node ID, waiting since since;
// ID 0 stands for a goroutine that is not a loom task.
func (r *Figures) Waiter(id uint64, since time.Time) {
	r.waiters = append(r.waiters, Waiter{ID: id, Since: since})
}

// ResourceInfo is a copy of a resource's figures.
type ResourceInfo struct {
	ID      uint64    `json:"id"`
	Kind    string    `json:"kind"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Stats   []Stat    `json:"stats"`
	// Waiters lists the tasks or groups waiting on the resource, in the
	// order they wait.
	Waiters []Waiter `json:"waiters,omitempty"`
	// Parts lists the resource's parts, such as a distributed pool's
	// remote workers.
	Parts []Part `json:"parts,omitempty"`
}

// resourcesMade counts the IDs given to resources, so that Totals can tell
// the tasks' from them.
var resourcesMade atomic.Uint64

var resources struct {
	mu   sync.Mutex
	head *Resource
	n    int
}

// Track registers obj as a resource of the given kind and name. report is
// called, while the monitor reads, with obj to describe it; it must not
// block for long and must not keep obj. Track returns nil, registering
// nothing, while the registry is off; every Resource method accepts nil.
func Track[T any](obj *T, kind Kind, name string, report func(obj *T, r *Figures)) *Resource {
	if !enabled.Load() || obj == nil {
		return nil
	}
	wp := weak.Make(obj)
	resourcesMade.Add(1)
	res := &Resource{id: nextID.Add(1), kind: kind, name: name, created: now()}
	res.report = func(r *Figures) bool {
		p := wp.Value()
		if p == nil {
			return false
		}
		report(p, r)
		return true
	}
	resources.mu.Lock()
	res.next = resources.head
	if res.next != nil {
		res.next.prev = res
	}
	resources.head = res
	res.linked = true
	resources.n++
	resources.mu.Unlock()
	runtime.AddCleanup(obj, untrack, res)
	return res
}

// ID returns the resource's identifier, or 0 for nil.
func (r *Resource) ID() uint64 {
	if r == nil {
		return 0
	}
	return r.id
}

// Untrack removes the resource from the registry, for objects with an end
// such as a closed pool. It is safe to call more than once and on nil.
func (r *Resource) Untrack() {
	if r != nil {
		untrack(r)
	}
}

func untrack(r *Resource) {
	resources.mu.Lock()
	defer resources.mu.Unlock()
	if !r.linked {
		return
	}
	if r.prev != nil {
		r.prev.next = r.next
	} else {
		resources.head = r.next
	}
	if r.next != nil {
		r.next.prev = r.prev
	}
	r.prev, r.next, r.linked = nil, nil, false
	resources.n--
}

// Resources returns the registered resources that are still alive, ordered
// by ID. Each object's report runs outside the registry's lock.
func Resources() []ResourceInfo {
	resources.mu.Lock()
	list := make([]*Resource, 0, resources.n)
	for r := resources.head; r != nil; r = r.next {
		list = append(list, r)
	}
	resources.mu.Unlock()
	out := make([]ResourceInfo, 0, len(list))
	for _, r := range list {
		var rep Figures
		if !r.report(&rep) {
			continue
		}
		out = append(out, ResourceInfo{
			ID: r.id, Kind: r.kind.String(), Name: r.name, Created: wall(r.created),
			Stats: rep.stats, Waiters: rep.waiters, Parts: rep.parts,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
