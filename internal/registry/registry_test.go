package registry

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestListAddRemove(t *testing.T) {
	var l List
	nodes := make([]*Node, 5)
	for i := range nodes {
		nodes[i] = &Node{id: uint64(i + 1)}
		l.Add(nodes[i])
	}
	l.Remove(nodes[0]) // tail
	l.Remove(nodes[4]) // head
	l.Remove(nodes[2]) // middle
	var ids []uint64
	l.Each(func(n *Node) { ids = append(ids, n.id) })
	if fmt.Sprint(ids) != "[4 2]" || l.Len() != 2 {
		t.Fatalf("list holds %v (len %d), want [4 2]", ids, l.Len())
	}
}

func TestPublishSnapshotUnpublish(t *testing.T) {
	n := &Node{}
	n.Init(KindTask, "probe", 0, 0, 0)
	n.SetState(Running)
	Publish(n)
	found := false
	for _, in := range Snapshot() {
		if in.ID == n.ID() {
			found = in.Name == "probe" && in.State == "running" && in.Kind == "task"
		}
	}
	if !found {
		t.Fatal("published node not in the snapshot")
	}
	if f, ok := Lookup(n.ID(), 0); !ok || f.Info.ID != n.ID() || f.Info.Name != "probe" {
		t.Fatalf("Lookup = %+v, %v", f, ok)
	}
	n.Finish(Failed, errors.New("went wrong"))
	Unpublish(n)
	if _, ok := Lookup(n.ID(), 0); ok {
		t.Fatal("unpublished node still found")
	}
	term := Terminated()
	if len(term) == 0 || term[0].ID != n.ID() || term[0].Err != "went wrong" || term[0].State != "failed" {
		t.Fatalf("newest termination = %+v", term[0])
	}
}

func TestDisabledNodesAreAnonymous(t *testing.T) {
	SetEnabled(false)
	defer SetEnabled(true)
	n := &Node{}
	n.Init(KindTask, "quiet", 0, 0, 0)
	Publish(n)
	if _, ok := Lookup(0, 0); n.ID() != 0 || ok {
		t.Fatal("a node made with the registry off was published")
	}
	n.Finish(Done, nil)
	Unpublish(n)
}

func TestEventsAreBoundedAndHooked(t *testing.T) {
	var mu sync.Mutex
	var seen int
	old := SetHook(func(Event) { mu.Lock(); seen++; mu.Unlock() })
	defer func() { SetHook(old) }()
	for i := range EventsSize + 10 {
		Report(Event{Check: "test", Message: fmt.Sprint(i)})
	}
	ev := Events()
	if len(ev) != EventsSize || ev[len(ev)-1].Message != fmt.Sprint(EventsSize+9) {
		t.Fatalf("kept %d events, last %q", len(ev), ev[len(ev)-1].Message)
	}
	if seen != EventsSize+10 {
		t.Fatalf("hook saw %d events", seen)
	}
}

func TestCreationStackInDebugMode(t *testing.T) {
	SetDebug(true)
	defer SetDebug(false)
	n := &Node{}
	n.Init(KindTask, "traced", 0, 0, 0)
	if stack := n.Info().Stack; !strings.Contains(stack, "TestCreationStackInDebugMode") {
		t.Fatalf("creation stack:\n%s", stack)
	}
}

func TestStateNames(t *testing.T) {
	for s, want := range map[State]string{Pending: "pending", Running: "running", Done: "done", Failed: "failed", Cancelled: "cancelled", 99: "unknown"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q", s, s.String())
		}
	}
	if Running.Terminal() || !Cancelled.Terminal() {
		t.Error("Terminal is wrong")
	}
}

func ExampleSnapshot() {
	n := &Node{}
	n.Init(KindTask, "example", 0, 0, 0)
	n.SetState(Running)
	Publish(n)
	for _, in := range Snapshot() {
		if in.ID == n.ID() {
			fmt.Println(in.Kind, in.Name, in.State)
		}
	}
	n.Finish(Done, nil)
	Unpublish(n)
	// Output: task example running
}

func TestTrackedResourceIsUnlinkedWhenCollected(t *testing.T) {
	type thing struct{ n int }
	obj := &thing{n: 7}
	r := Track(obj, KindQueue, "things", func(p *thing, f *Figures) {
		f.Stat("n", float64(p.n))
		f.Waiter(42, time.Now())
	})
	var found bool
	for _, in := range Resources() {
		if in.ID == r.ID() {
			found = true
			if in.Kind != "queue" || in.Name != "things" || len(in.Stats) != 1 || in.Stats[0].Value != 7 || len(in.Waiters) != 1 || in.Waiters[0].ID != 42 {
				t.Fatalf("resource info: %+v", in)
			}
		}
	}
	if !found {
		t.Fatal("tracked resource not listed")
	}
	runtime.KeepAlive(obj)
	obj = nil
	for range 100 {
		runtime.GC()
		resources.mu.Lock()
		linked := r.linked
		resources.mu.Unlock()
		if !linked {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("resource still linked after its object was collected")
}

func TestUntrackAndDisabledRegistry(t *testing.T) {
	type thing struct{}
	obj := &thing{}
	r := Track(obj, KindLock, "l", func(*thing, *Figures) {})
	r.Untrack()
	r.Untrack()
	for _, in := range Resources() {
		if in.ID == r.ID() {
			t.Fatal("untracked resource listed")
		}
	}
	SetEnabled(false)
	defer SetEnabled(true)
	if Track(obj, KindLock, "off", func(*thing, *Figures) {}) != nil {
		t.Fatal("Track registered while the registry is off")
	}
	var none *Resource
	none.Untrack()
	if none.ID() != 0 {
		t.Fatal("nil resource has an ID")
	}
}

// A list counts its nodes and those MarkRunning moved to Running, and
// Remove uncounts them whatever state they ended in: after every node is
// gone, nothing is left counted, not even hidden by Counts' bounds.
func TestListCountsRunningExactly(t *testing.T) {
	var l List
	nodes := make([]*Node, 6)
	for i := range nodes {
		nodes[i] = &Node{}
		nodes[i].Init(KindTask, "counted", 0, 0, 0)
		l.Add(nodes[i])
	}
	for _, n := range nodes[:4] {
		l.MarkRunning(n)
	}
	if live, running := l.Counts(); live != 6 || running != 4 {
		t.Fatalf("counts %d live, %d running; want 6, 4", live, running)
	}
	nodes[0].Finish(Failed, errors.New("failed"))
	nodes[1].MarkRetrieved()
	nodes[1].Finish(Done, nil)
	if nodes[1].State() != Done || !nodes[1].Retrieved() {
		t.Fatalf("the flags took the state: %v, retrieved %v", nodes[1].State(), nodes[1].Retrieved())
	}
	nodes[4].Finish(Cancelled, nil) // never ran
	for _, n := range []*Node{nodes[0], nodes[1], nodes[4]} {
		l.Remove(n)
	}
	if live, running := l.Counts(); live != 3 || running != 2 {
		t.Fatalf("counts %d live, %d running; want 3, 2", live, running)
	}
	for _, n := range []*Node{nodes[2], nodes[3], nodes[5]} {
		l.Remove(n)
	}
	if l.n != 0 || l.running.Load() != 0 {
		t.Fatalf("left counted: %d live, %d running", l.n, l.running.Load())
	}
}

// firstK keeps exactly the first k keys of the order, as sorting them all
// and taking k would, in every order and for every k.
func TestFirstKAgreesWithASort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "b", "c", "d"}
	for round := range 200 {
		for _, order := range []string{SortID, SortNewest, SortName, SortState} {
			f := Filter{Sort: order}
			ids := rng.Perm(rng.IntN(300)) // unique IDs, in no order
			keys := make([]sortKey, len(ids))
			for i, id := range ids {
				keys[i] = sortKey{id: uint64(id) + 1}
				if order == SortName || order == SortState {
					keys[i].key = names[rng.IntN(len(names))]
				}
			}
			k := 1 + rng.IntN(50)
			first := firstK{f: &f, k: k}
			for _, x := range keys {
				first.add(x)
			}
			want := slices.Clone(keys)
			slices.SortFunc(want, f.compare)
			want = want[:min(k, len(want))]
			got := slices.Clone(first.h)
			slices.SortFunc(got, f.compare)
			if !slices.Equal(got, want) {
				t.Fatalf("round %d, sort=%s, k=%d: kept %v, want %v", round, order, k, got, want)
			}
		}
	}
}
