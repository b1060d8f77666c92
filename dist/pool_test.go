package dist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"loom"
	"loom/internal/registry"
	"loom/pipeline"
	"loom/pool"
)

// The functions the remote pool tests run; registered at package level, as
// pool.Register asks, so that worker processes have them too.
var (
	square    = pool.Register("dist-square", func(_ context.Context, n int) (int, error) { return n * n, nil })
	refuse    = pool.Register("dist-refuse", func(_ context.Context, why string) (int, error) { return 0, errors.New(why) })
	explode   = pool.Register("dist-explode", func(context.Context, int) (int, error) { panic("remote boom") })
	huge      = pool.Register("dist-huge", func(_ context.Context, n int) (string, error) { return strings.Repeat("x", n), nil })
	trace     = pool.Register("dist-trace", func(ctx context.Context, _ int) (string, error) { return Traceparent(ctx), nil })
	gate      = make(chan struct{})
	deaf      = pool.Register("dist-deaf", func(context.Context, int) (int, error) { <-gate; return 1, nil }) // ignores its context
	cancelled = make(chan error, 1)
	block     = pool.Register("dist-block", func(ctx context.Context, _ int) (int, error) {
		<-ctx.Done()
		cancelled <- context.Cause(ctx)
		return 0, context.Cause(ctx)
	})
)

// servePool runs ServePool on b for the test.
func servePool(t *testing.T, b Backend, name string) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServePool(ctx, b, name, nil, Workers(4), Heartbeat(20*time.Millisecond)) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

func TestRemotePoolRunsFunctions(t *testing.T) {
	b := Memory()
	ctx := context.Background()
	p, err := NewPool(ctx, b, "fns")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	servePool(t, b, "fns")
	task, err := Submit(ctx, p, square, 7)
	if err != nil {
		t.Fatal(err)
	}
	// Created by dist's own code, shown where the user called Submit.
	if loc := task.Info().Location; !strings.Contains(loc, "TestRemotePoolRunsFunctions") || !strings.Contains(loc, "pool_test.go") {
		t.Fatalf("the remote call's task was created at %q; want the Submit call in this test", loc)
	}
	if v, err := task.Wait(ctx); v != 49 || err != nil {
		t.Fatalf("square(7) = %d, %v", v, err)
	}
	var re *pool.RemoteError
	r, _ := Submit(ctx, p, refuse, "no way")
	if _, err := r.Wait(ctx); !errors.As(err, &re) || re.Message != "no way" {
		t.Fatalf("a remote error: %v", err)
	}
	x, _ := Submit(ctx, p, explode, 1)
	if _, err := x.Wait(ctx); !errors.As(err, &re) || !strings.Contains(re.Panic, "remote boom") {
		t.Fatalf("a remote panic: %v", err)
	}
	h, _ := Submit(ctx, p, huge, 2<<20)
	if _, err := h.Wait(ctx); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a result too large: %v", err)
	}
	if _, err := Submit(ctx, p, huge, int(0)); err != nil {
		t.Fatal(err)
	}
	if _, err := Submit(ctx, p, square, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := Submit[int, int](ctx, nil, square, 1); !errors.Is(err, loom.ErrInvalidArgument) {
		t.Fatalf("nil pool: %v", err)
	}
	if _, err := NewPool(ctx, b, strings.Repeat("p", MaxPoolName+1)); !errors.Is(err, loom.ErrInvalidArgument) {
		t.Fatalf("long name: %v", err)
	}
}

// The remote function runs in the caller's trace: the same trace ID, a
// parent ID of the job's own; a caller without one starts a trace.
func TestRemotePoolCarriesTheTrace(t *testing.T) {
	b := Memory()
	ctx := context.Background()
	p, err := NewPool(ctx, b, "trace")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	servePool(t, b, "trace")
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tctx, err := WithTraceparent(ctx, tp)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Remote(p, trace)(tctx, 0)
	if err != nil || !strings.HasPrefix(got, tp[:36]) || got == tp || !strings.HasSuffix(got, "-01") {
		t.Fatalf("the function's traceparent %q, %v; want trace %s with a new parent ID", got, err, tp[3:35])
	}
	fresh, err := Remote(p, trace)(ctx, 0)
	if err != nil || len(fresh) != 55 || strings.HasPrefix(fresh, tp[:36]) {
		t.Fatalf("without a trace, the function saw %q, %v; want a new trace", fresh, err)
	}
	if _, err := parseTraceparent(fresh); err != nil {
		t.Fatal(err)
	}
}

// A worker that finishes a job after its caller closed the pool drops the
// result: the caller's result queue is not created again, the job is done,
// and the worker's heartbeat counts it as orphaned.
func TestRemotePoolLateResultAfterClose(t *testing.T) {
	b := Memory()
	ctx := context.Background()
	p, err := NewPool(ctx, b, "late")
	if err != nil {
		t.Fatal(err)
	}
	servePool(t, b, "late")
	task, err := Submit(ctx, p, deaf, 0)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ws, _ := RemoteWorkers(ctx, b, "late")
		if len(ws) == 1 && ws[0].Running == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the job never started")
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := task.Wait(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("the waiting task: %v", err)
	}
	gate <- struct{}{} // the function ends now, long after Close
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ws, _ := RemoteWorkers(ctx, b, "late")
		if len(ws) == 1 && ws[0].Orphaned == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the late result was not dropped: %+v", ws)
		}
	}
	if _, err := Open[remoteResult](ctx, b, resultQueue("late", p.caller), Existing()); !errors.Is(err, ErrNoQueue) {
		t.Fatalf("the caller's result queue after a late result: %v", err)
	}
	jobs, err := Open[remoteJob](ctx, b, "late-jobs", Existing())
	if err != nil {
		t.Fatal(err)
	}
	defer jobs.Close()
	if n, err := jobs.Unfinished(ctx); err != nil || n != 0 {
		t.Fatalf("the late job is unfinished: %d, %v", n, err)
	}
}

// Cancelling the caller's task cancels the remote function's context.
func TestRemotePoolCancelReachesTheFunction(t *testing.T) {
	b := Memory()
	ctx := context.Background()
	p, err := NewPool(ctx, b, "cancel")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	servePool(t, b, "cancel")
	// Submitted from a task of the caller's, so that the remote task
	// names where it came from.
	caller := loom.Go(ctx, "caller", func(ctx context.Context) (*loom.Task[int], error) {
		// WithoutCancel: the job outlives this task, which ends at once;
		// the task's ID still travels with the context's values.
		return Submit(context.WithoutCancel(ctx), p, block, 1)
	})
	task, err := caller.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var remote string
	for deadline := time.Now().Add(5 * time.Second); remote == "" && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, in := range registry.Snapshot() {
			if strings.HasPrefix(in.Name, "dist-block for ") {
				remote = in.Name
			}
		}
	}
	if want := fmt.Sprintf("/%d task %d \"caller\"", os.Getpid(), caller.ID()); !strings.HasSuffix(remote, want) {
		t.Fatalf("the remote task is named %q, want it to end in %q", remote, want)
	}
	why := errors.New("user pressed stop")
	task.Cancel(why)
	if _, err := task.Wait(ctx); !errors.Is(err, why) {
		t.Fatalf("cancelled task: %v", err)
	}
	select {
	case cause := <-cancelled:
		if !errors.Is(cause, errCancelledByCaller) {
			t.Fatalf("the remote function saw %v", cause)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the remote function was not cancelled")
	}
}

// A job whose deadline passed before a worker took it is dropped with an
// expired result; an unknown function name and a result delivered twice
// are handled without harm.
func TestRemotePoolExpiredUnknownAndDuplicates(t *testing.T) {
	b := Memory()
	ctx := context.Background()
	p, err := NewPool(ctx, b, "edge", JobTTL(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	late, err := Submit(ctx, p, square, 3)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond) // no worker yet: the job expires
	servePool(t, b, "edge")
	if _, err := late.Wait(ctx); !errors.Is(err, ErrJobExpired) {
		t.Fatalf("a job past its deadline: %v", err)
	}
	// A job naming a function this process never registered (a worker
	// binary older than the caller's, say).
	c := &call{ch: make(chan remoteResult, 1)}
	p.mu.Lock()
	p.waiting["unknown-job"] = c
	p.mu.Unlock()
	if err := p.jobs.Put(ctx, remoteJob{ID: "unknown-job", Func: "no-such-func", Caller: p.caller, Deadline: time.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if _, err := decodeResult(square, <-c.ch); !errors.Is(err, pool.ErrUnknownFunc) {
		t.Fatalf("an unknown function: %v", err)
	}
	// A result delivered twice: the second finds nobody and is dropped.
	task, _ := Submit(ctx, p, square, 5)
	if v, err := task.Wait(ctx); v != 25 || err != nil {
		t.Fatal(v, err)
	}
	if err := p.results.Put(ctx, remoteResult{ID: "already-done", Result: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	if err := p.results.Join(ctx); err != nil {
		t.Fatal(err)
	}
}

// The queue reports to the monitor: this process's counts at once, the
// backend's figures for the whole queue once a background refresh has
// read them.
func TestQueueReportsToTheMonitor(t *testing.T) {
	ctx := context.Background()
	name := "reported-" + newID() // -count=N: the last run's queue may not be collected yet
	q, err := Open[int](ctx, Memory(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for i := range 3 {
		_ = q.Put(ctx, i)
	}
	m, _ := q.Get(ctx)
	figures := func() map[string]float64 {
		for _, r := range registry.Resources() {
			if r.Kind == "dist-queue" && r.Name == name {
				got := map[string]float64{}
				for _, s := range r.Stats {
					got[s.Name] = s.Value
				}
				return got
			}
		}
		t.Fatal("the queue is not in the registry")
		return nil
	}
	figures() // starts the first refresh
	for deadline := time.Now().Add(5 * time.Second); (q.shared.Load() == nil || q.refresh.busy.Load()) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	got := figures()
	if got["puts"] != 3 || got["gets"] != 1 || got["in_flight_here"] != 1 || got["ready"] != 2 || got["in_flight"] != 1 {
		t.Fatalf("figures %v", got)
	}
	_ = m.Done(ctx)
}

// Workers of a remote pool write heartbeats: RemoteWorkers lists them
// alive while they serve, as left once they stop cleanly, and as lost when
// their heartbeats stop without that.
func TestRemoteWorkersHeartbeat(t *testing.T) {
	b := Memory()
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ServePool(ctx, b, "beats", nil, Heartbeat(20*time.Millisecond)) }()
	var ws []WorkerInfo
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		var err error
		if ws, err = RemoteWorkers(context.Background(), b, "beats"); err != nil {
			t.Fatal(err)
		}
		if len(ws) == 1 && ws[0].Seen.After(ws[0].Started) {
			break
		}
	}
	if len(ws) != 1 || ws[0].Lost || ws[0].Left || ws[0].Pool != "beats" || ws[0].Every != 20*time.Millisecond {
		t.Fatalf("a serving worker: %+v", ws)
	}
	stop()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	ws, _ = RemoteWorkers(context.Background(), b, "beats")
	if len(ws) != 1 || !ws[0].Left || ws[0].Lost {
		t.Fatalf("a worker that stopped cleanly: %+v", ws)
	}
	// A worker whose heartbeats stopped three intervals ago, killed.
	gone := WorkerInfo{ID: "gone", Pool: "beats", Started: time.Now().Add(-time.Minute), Seen: time.Now().Add(-time.Second), Every: 100 * time.Millisecond}
	data, _ := json.Marshal(gone)
	if err := b.(Registry).Record(context.Background(), workersPrefix("beats")+"gone", data); err != nil {
		t.Fatal(err)
	}
	ws, _ = RemoteWorkers(context.Background(), b, "beats")
	if len(ws) != 2 || ws[0].ID != "gone" || !ws[0].Lost {
		t.Fatalf("a killed worker: %+v", ws)
	}
	// The monitor lists them as parts of the caller's pool resource.
	p, err := NewPool(context.Background(), b, "beats")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var parts []registry.Part
	for deadline := time.Now().Add(5 * time.Second); len(parts) < 2 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, r := range registry.Resources() {
			if r.Kind == registry.KindDistPool.String() && r.Name == "beats" {
				parts = r.Parts
			}
		}
	}
	if len(parts) != 2 || parts[0].State != "lost" || parts[1].State != "left" || len(parts[0].Stats) != 4 {
		t.Fatalf("the pool's workers in the monitor: %+v", parts)
	}
}

// A pipeline stage hands its items to remote workers through Remote, with
// the stage's own backpressure: at most Workers calls in flight.
func TestRemoteAsAPipelineStage(t *testing.T) {
	b := Memory()
	ctx := context.Background()
	p, err := NewPool(ctx, b, "stage")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	servePool(t, b, "stage")
	pl := pipeline.New(ctx, "squares")
	out := pipeline.Map(pipeline.From(pl, slices.Values([]int{1, 2, 3, 4, 5, 6, 7, 8})), "square", Remote(p, square), pipeline.Workers(3), pipeline.Ordered())
	var got []int
	for v := range out.Items() {
		got = append(got, v)
	}
	if err := pl.Wait(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []int{1, 4, 9, 16, 25, 36, 49, 64}) {
		t.Fatalf("got %v", got)
	}
	if st := p.Stats(); st.Submitted != 8 || st.Results != 8 {
		t.Fatalf("stats %+v", st)
	}
}
