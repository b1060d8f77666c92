package registry

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Node is one registered task, group or scope. It is embedded in, or owned
// by, the object it describes. The fields set by Init are immutable after it;
// the state moves with SetState and Finish.
type Node struct {
	id      uint64
	parent  uint64
	pc      uintptr // entry of the node's function, for "where created"
	created int64
	ended   int64 // written before the terminal state is stored
	name    string
	err     error    // written before the terminal state is stored
	ext     *nodeExt // what only some nodes have; nil for most tasks
	// cancel, when set, cancels the node's own context; the monitor uses
	// it. It is here rather than in ext because every standalone task has
	// one.
	cancel func(error)
	prev   *Node
	next   *Node

	// state holds the State in its low bits, retrievedBit and countedBit: one word
	// rather than two keeps a group member's allocation in a smaller size
	// class.
	state atomic.Uint32
	kind  Kind
}

// nodeExt holds what groups, standalone tasks and debug mode add to a node,
// kept apart so that the many tasks of a group stay small.
type nodeExt struct {
	stack []uintptr // creation stack, in debug mode only
	// children, when set, lists the nodes this one owns (a group's tasks).
	children Container
}

// Ext is room for what a group or scope adds to its node (the container
// of its tasks, its creation stack in debug mode): an owner that embeds one
// and passes it to UseExt saves the node an allocation.
type Ext struct{ e nodeExt }

// UseExt makes x the node's extension. Call it before Init.
func (n *Node) UseExt(x *Ext) { n.ext = &x.e }

func (n *Node) extension() *nodeExt {
	if n.ext == nil {
		n.ext = &nodeExt{}
	}
	return n.ext
}

// Container is implemented by nodes that own other nodes, such as groups.
// Walk calls f for each owned node while holding the owner's lock; f must
// only copy. Find does the same for the owned node with the given ID, if
// there is one, and reports whether there was: an owner that keeps its
// nodes in lists chosen by ID walks only the one list that can hold it.
//
// Counts returns how many nodes it owns and how many of them are running
// (List.Counts, summed over its lists).
type Container interface {
	Walk(f func(*Node))
	Find(id uint64, f func(*Node)) bool
	Counts() (live, running int)
}

// Init fills in a node. When the registry is off only kind, name and parent
// are kept and the node stays anonymous (ID 0), costing nothing more.
// skip is how many callers to skip for the debug creation stack, counted from
// the caller of Init.
func (n *Node) Init(kind Kind, name string, parent uint64, pc uintptr, skip int) {
	n.InitID(NewID(), kind, name, parent, pc, skip+1)
}

// NewID returns a new node ID, or 0 while the registry is off: what InitID
// takes, for an owner that must know a node's ID before it has the node
// (a group picks its task's list, and the spare node in it, by ID).
func NewID() uint64 {
	if !enabled.Load() {
		return 0
	}
	return nextID.Add(1)
}

// InitID is Init with the node's ID, from NewID: 0 leaves the node
// anonymous.
func (n *Node) InitID(id uint64, kind Kind, name string, parent uint64, pc uintptr, skip int) {
	n.kind, n.name, n.parent, n.pc = kind, name, parent, pc
	if id == 0 {
		return
	}
	n.id = id
	n.created = now()
	if pc != 0 && internalPC(pc) {
		// A wrapper of loom's own (a pipeline stage's worker, a remote
		// call's task): where it was created is the first caller outside
		// loom, the user's Map or Submit.
		if u := userCaller(); u != 0 {
			n.pc = u
		}
	}
	if debug.Load() {
		var pcs [32]uintptr
		k := runtime.Callers(skip+2, pcs[:])
		n.extension().stack = append([]uintptr(nil), pcs[:k]...)
	}
}

// SetCancel records how to cancel the node's own context.
func (n *Node) SetCancel(f func(error)) { n.cancel = f }

// SetChildren records the container of the nodes this one owns.
func (n *Node) SetChildren(c Container) { n.extension().children = c }

// children returns the container of the nodes this one owns, or nil.
func (n *Node) children() Container {
	if n.ext == nil {
		return nil
	}
	return n.ext.children
}

// ID returns the node's identifier, or 0 if it was created while the
// registry was off.
func (n *Node) ID() uint64 { return n.id }

// Name returns the node's name.
func (n *Node) Name() string { return n.name }

// State returns the node's current state.
func (n *Node) State() State { return State(n.state.Load() &^ flagBits) }

const (
	// retrievedBit marks, in Node.state, that somebody has read the result.
	retrievedBit = 1 << 31
	// countedBit marks, in Node.state, that List.MarkRunning counted the
	// node among its list's running nodes, so that Remove uncounts it.
	countedBit = 1 << 30
	flagBits   = retrievedBit | countedBit
)

// SetState moves a node to a non-terminal state.
func (n *Node) SetState(s State) { n.setState(s, 0) }

// setState stores s, keeps the flags and adds those in add.
func (n *Node) setState(s State, add uint32) {
	for {
		old := n.state.Load()
		if n.state.CompareAndSwap(old, old&flagBits|add|uint32(s)) {
			return
		}
	}
}

// Finish records the node's end: its terminal state and error. Call it once.
func (n *Node) Finish(s State, err error) {
	n.err = err
	if n.id != 0 {
		n.ended = max(now(), n.created)
	}
	n.setState(s, 0)
}

// Err returns the error recorded by Finish. Call it only after State
// returned a terminal state.
func (n *Node) Err() error { return n.err }

// MarkRetrieved records that somebody has read the node's result.
func (n *Node) MarkRetrieved() { n.state.Or(retrievedBit) }

// Retrieved reports whether somebody has read the node's result.
func (n *Node) Retrieved() bool { return n.state.Load()&retrievedBit != 0 }

// Cancel cancels the node's own context with cause and reports whether the
// node has a context of its own to cancel.
func (n *Node) Cancel(cause error) bool {
	if n.cancel == nil {
		return false
	}
	n.cancel(cause)
	return true
}

// pcCache remembers, for each pc asked about, which code it is in (a
// pcClass): a direct-mapped cache of pc<<2|class, so that the common case
// (the user's function) costs one atomic load, and finding the user's
// caller costs a load per frame, with no symbol lookup once warm.
var pcCache [1024]atomic.Uint64

// A pcClass says whose code a pc is in.
type pcClass uint64

const (
	userCode    pcClass = iota // the program's own (tests, examples and the command included)
	libraryCode                // loom's library
	runtimeCode                // the Go runtime
)

// classify returns whose code pc is in.
func classify(pc uintptr) pcClass {
	slot := &pcCache[(pc>>2)%uintptr(len(pcCache))]
	if e := slot.Load(); e>>2 == uint64(pc) {
		return pcClass(e & 3)
	}
	class := userCode
	if f := runtime.FuncForPC(pc); f != nil {
		file, _ := f.FileLine(pc)
		switch {
		case libraryFunc(f.Name(), file):
			class = libraryCode
		case strings.HasPrefix(f.Name(), "runtime."):
			class = runtimeCode
		}
	}
	slot.Store(uint64(pc)<<2 | uint64(class))
	return class
}

// internalPC reports whether pc is in a function of loom's library (not its
// tests, examples, command or benchmarks).
func internalPC(pc uintptr) bool { return classify(pc) == libraryCode }

// libraryFunc reports whether the function named name, in file, is part of
// loom's library.
func libraryFunc(name, file string) bool {
	if strings.HasSuffix(file, "_test.go") {
		return false
	}
	if strings.HasPrefix(name, "loom.") {
		return true
	}
	rest, ok := strings.CutPrefix(name, "loom/")
	return ok && !strings.HasPrefix(rest, "examples/") && !strings.HasPrefix(rest, "cmd/") && !strings.HasPrefix(rest, "bench")
}

// userCaller returns the pc of the first call outside loom's library and
// the runtime (the call into loom), or 0 if the goroutine has none (one of
// loom's own, such as a pipeline's). The return addresses are classified
// through pcCache: a remote call or a pipeline stage pays a few loads per
// frame, not a symbol lookup.
func userCaller() uintptr {
	var pcs [32]uintptr
	k := runtime.Callers(2, pcs[:])
	for _, ret := range pcs[:k] {
		if call := ret - 1; classify(call) == userCode { // the call instruction, not the return address
			return call
		}
	}
	return 0
}

// locations caches location by pc: a snapshot of 100,000 tasks made from
// a few functions formats a few strings, not 100,000.
var locations sync.Map // uintptr -> string

// location returns where the function at pc is defined, as
// "function (file:line)", or "" if unknown.
func location(pc uintptr) string {
	if pc == 0 {
		return ""
	}
	if s, ok := locations.Load(pc); ok {
		return s.(string)
	}
	f := runtime.FuncForPC(pc)
	if f == nil {
		return ""
	}
	file, line := f.FileLine(pc)
	s := fmt.Sprintf("%s (%s:%d)", f.Name(), file, line)
	locations.Store(pc, s)
	return s
}

// creationStack formats a creation stack, one frame a line; "" for none
// (outside debug mode).
func creationStack(stack []uintptr) string {
	if len(stack) == 0 {
		return ""
	}
	frames := runtime.CallersFrames(stack)
	var out []byte
	for {
		f, more := frames.Next()
		out = fmt.Appendf(out, "%s\n\t%s:%d\n", f.Function, f.File, f.Line)
		if !more {
			break
		}
	}
	return string(out)
}

// Info is a copy of a node's figures at one moment.
type Info struct {
	ID       uint64    `json:"id"`
	Parent   uint64    `json:"parent"`
	Kind     string    `json:"kind"`
	Name     string    `json:"name"`
	State    string    `json:"state"`
	Created  time.Time `json:"created"`
	Ended    time.Time `json:"ended,omitzero"`
	Location string    `json:"location,omitempty"`
	// Err is the error the node ended with, as text.
	Err string `json:"error,omitempty"`
	// Stack is the creation stack, recorded in debug mode only.
	Stack string `json:"creation_stack,omitempty"`
	// Cancellable is true when the node has a context of its own that the
	// monitor can cancel.
	Cancellable bool `json:"cancellable"`
}

// Info returns a copy of the node's figures.
func (n *Node) Info() Info {
	r := n.record()
	return r.info()
}

// record is a copy of what a node's Info shows, taken at one moment: the
// registry's history of terminations keeps records rather than the nodes,
// so that a group can reuse the node of a member that has ended.
type record struct {
	id, parent     uint64
	pc             uintptr
	created, ended int64
	name           string
	err            error
	stack          []uintptr
	state          State
	kind           Kind
	cancellable    bool
}

// record copies the node's figures.
func (n *Node) record() record {
	var r record
	n.recordInto(&r)
	return r
}

// recordInto copies the node's figures into r, field by field: the
// history of terminations fills its slots in place.
func (n *Node) recordInto(r *record) {
	st := n.State()
	r.id, r.parent, r.pc, r.created, r.name = n.id, n.parent, n.pc, n.created, n.name
	r.state, r.kind, r.cancellable = st, n.kind, n.cancel != nil && !st.Terminal()
	r.stack, r.ended, r.err = nil, 0, nil
	if n.ext != nil {
		r.stack = n.ext.stack
	}
	if st.Terminal() {
		r.ended, r.err = n.ended, n.err
	}
}

func (r *record) info() Info {
	in := Info{
		ID: r.id, Parent: r.parent, Kind: r.kind.String(), Name: r.name,
		State: r.state.String(), Created: wall(r.created), Location: location(r.pc),
		Stack: creationStack(r.stack), Cancellable: r.cancellable,
	}
	if r.state.Terminal() {
		in.Ended = wall(r.ended)
		if r.err != nil {
			in.Err = r.err.Error()
		}
	}
	return in
}

// List is an intrusive doubly linked list of nodes. It has no lock of its
// own: its owner guards it. It counts its nodes, and those of them that
// MarkRunning moved to Running, so that the live nodes can be counted by
// state without a walk (Counts).
type List struct {
	head    *Node
	n       int
	running atomic.Int32
}

// MarkRunning moves n, a node of the list, to Running, and counts it
// among the list's running nodes until Remove (an anonymous node, made
// while the registry was off, is in no list and only changes state).
// Call it without the owner's lock, once, from the goroutine that will end
// the node, before it does.
func (l *List) MarkRunning(n *Node) {
	if n.id == 0 {
		n.setState(Running, 0)
		return
	}
	n.setState(Running, countedBit)
	l.running.Add(1)
}

// Counts returns how many nodes the list holds and how many of them
// MarkRunning counted. Call it with the owner's lock held.
func (l *List) Counts() (live, running int) {
	live, running = l.n, int(l.running.Load())
	return live, min(max(running, 0), live)
}

// Add links n at the front of the list.
func (l *List) Add(n *Node) {
	n.prev, n.next = nil, l.head
	if l.head != nil {
		l.head.prev = n
	}
	l.head = n
	l.n++
}

// Remove unlinks n, which must be in the list.
func (l *List) Remove(n *Node) {
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		l.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	}
	n.prev, n.next = nil, nil
	l.n--
	if n.state.Load()&countedBit != 0 {
		l.running.Add(-1)
	}
}

// Len returns the number of nodes in the list.
func (l *List) Len() int { return l.n }

// Find returns the node in the list with the given ID, or nil.
func (l *List) Find(id uint64) *Node {
	for n := l.head; n != nil; n = n.next {
		if n.id == id {
			return n
		}
	}
	return nil
}

// Each calls f for each node in the list, newest first.
func (l *List) Each(f func(*Node)) {
	for n := l.head; n != nil; n = n.next {
		f(n)
	}
}
