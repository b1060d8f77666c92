// Package disttest is the conformance suite of dist backends: one set of
// tests, run by every backend's own tests, as watermill's pubsub suite is.
// A backend passes when its queues behave as dist documents: acknowledged
// puts, redelivery after AckWait, delays that are never early, priorities
// without starvation, de-duplication, dead letters for poison and for
// messages nobody acknowledges, Join and Drain that lose nothing.
//
// It is an ordinary package, not a test file, so that backends in other
// packages (loom/dist/jetstream) can import it.
package disttest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"loom"
	"loom/dist"
	"loom/policy"
)

// Run runs the suite against the backend that newBackend returns; it may
// return the same backend every time, as every test opens queues of its
// own names.
func Run(t *testing.T, newBackend func(t *testing.T) dist.Backend) {
	tests := []struct {
		name string
		test func(t *testing.T, b dist.Backend)
	}{
		{"PutGetDone", putGetDone},
		{"AckWaitRedelivers", ackWaitRedelivers},
		{"ExtendKeepsTheMessage", extendKeeps},
		{"RetryIsNeverEarly", retryNeverEarly},
		{"PutAfterIsNeverEarly", putAfterNeverEarly},
		{"DeadLetters", deadLetters},
		{"UndecodableIsDeadLettered", undecodable},
		{"NoOutcomeIsDeadLettered", noOutcome},
		{"PrioritiesWithoutStarvation", priorities},
		{"DuplicateKeysDropped", duplicates},
		{"BadInput", badInput},
		{"HeadersAndTraceContext", headers},
		{"ExistingQueues", existing},
		{"ServeRetriesAndDeadLetters", serveRetries},
		{"ServeExtendsLongWork", serveExtends},
		{"DrainUnderLoadLosesNothing", drainUnderLoad},
		{"LivenessUnderFaults", liveness},
		{"Linearizable", linearizable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.test(t, newBackend(t))
		})
	}
}

var queueSeq atomic.Int64

// open opens a queue of a name no other test uses.
func open[T any](t *testing.T, b dist.Backend, opts ...dist.Option) *dist.Queue[T] {
	t.Helper()
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	if len(name) > 48 {
		name = name[len(name)-48:]
	}
	name = strings.TrimLeft(name, "-_")
	name = fmt.Sprintf("%s-%d", name, queueSeq.Add(1))
	q, err := dist.Open[T](context.Background(), b, name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustGet[T any](t *testing.T, q *dist.Queue[T], within time.Duration) *dist.Msg[T] {
	t.Helper()
	m, err := q.Get(ctxFor(t, within))
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return m
}

// nothingWithin checks that Get finds nothing for d.
func nothingWithin[T any](t *testing.T, q *dist.Queue[T], d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if m, err := q.Get(ctx); err == nil {
		t.Fatalf("Get returned %v (attempt %d) where nothing was due", m.Value, m.Attempt())
	}
}

func unfinished[T any](t *testing.T, q *dist.Queue[T]) int {
	t.Helper()
	n, err := q.Unfinished(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func putGetDone(t *testing.T, b dist.Backend) {
	q := open[string](t, b)
	ctx := ctxFor(t, 10*time.Second)
	for _, v := range []string{"a", "b", "c"} {
		if err := q.Put(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := q.Len(ctx); err != nil || n != 3 {
		t.Fatalf("Len = %d, %v", n, err)
	}
	var got []string
	for range 3 {
		m := mustGet(t, q, 5*time.Second)
		if m.Attempt() != 1 {
			t.Fatalf("first delivery is attempt %d", m.Attempt())
		}
		got = append(got, m.Value)
		if err := m.Done(ctx); err != nil {
			t.Fatal(err)
		}
		if err := m.Done(ctx); !errors.Is(err, dist.ErrSettled) {
			t.Fatalf("second Done: %v", err)
		}
	}
	if !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("got %v, want first in first out", got)
	}
	if err := q.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if n := unfinished(t, q); n != 0 {
		t.Fatalf("unfinished %d after all were done", n)
	}
}

func ackWaitRedelivers(t *testing.T, b dist.Backend) {
	q := open[int](t, b, dist.AckWait(300*time.Millisecond))
	ctx := ctxFor(t, 10*time.Second)
	if err := q.Put(ctx, 7); err != nil {
		t.Fatal(err)
	}
	first := mustGet(t, q, 5*time.Second)
	start := time.Now()
	// Not settled: the consumer "died". It comes again after AckWait.
	again := mustGet(t, q, 5*time.Second)
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Fatalf("redelivered after %v, before the 300ms AckWait", waited)
	}
	if again.ID() != first.ID() || again.Attempt() != 2 || again.Value != 7 {
		t.Fatalf("redelivery: id %s (first %s), attempt %d, value %d", again.ID(), first.ID(), again.Attempt(), again.Value)
	}
	if err := again.Done(ctx); err != nil {
		t.Fatal(err)
	}
	if err := q.Join(ctx); err != nil {
		t.Fatal(err)
	}
}

func extendKeeps(t *testing.T, b dist.Backend) {
	// Extended every 100ms under an AckWait of 600ms: a hiccup of half a
	// second in a busy CI run does not make it look unextended.
	q := open[int](t, b, dist.AckWait(600*time.Millisecond))
	ctx := ctxFor(t, 10*time.Second)
	if err := q.Put(ctx, 1); err != nil {
		t.Fatal(err)
	}
	m := mustGet(t, q, 5*time.Second)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				_ = m.Extend(ctx)
			}
		}
	}()
	nothingWithin(t, q, 1500*time.Millisecond) // over two AckWaits
	close(stop)
	if err := m.Done(ctx); err != nil {
		t.Fatalf("Done after extending: %v", err)
	}
	if err := m.Extend(ctx); !errors.Is(err, dist.ErrSettled) {
		t.Fatalf("Extend after Done: %v", err)
	}
}

func retryNeverEarly(t *testing.T, b dist.Backend) {
	q := open[int](t, b)
	ctx := ctxFor(t, 10*time.Second)
	if err := q.Put(ctx, 1); err != nil {
		t.Fatal(err)
	}
	m := mustGet(t, q, 5*time.Second)
	start := time.Now()
	if err := m.Retry(ctx, 400*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if n := unfinished(t, q); n != 1 {
		t.Fatalf("a delayed retry is unfinished: %d, want 1", n)
	}
	joined := make(chan error, 1)
	go func() { joined <- q.Join(ctx) }()
	again := mustGet(t, q, 5*time.Second)
	if waited := time.Since(start); waited < 400*time.Millisecond {
		t.Fatalf("retried after %v, before its 400ms delay", waited)
	}
	select {
	case err := <-joined:
		t.Fatalf("Join returned (%v) while a retry was pending", err)
	default:
	}
	if again.Attempt() != 2 {
		t.Fatalf("attempt %d", again.Attempt())
	}
	if err := again.Done(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-joined; err != nil {
		t.Fatal(err)
	}
}

func putAfterNeverEarly(t *testing.T, b dist.Backend) {
	q := open[string](t, b)
	ctx := ctxFor(t, 10*time.Second)
	start := time.Now()
	if err := q.Put(ctx, "later", dist.After(500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := q.Put(ctx, "now"); err != nil {
		t.Fatal(err)
	}
	if n := unfinished(t, q); n != 2 {
		t.Fatalf("unfinished %d, want 2 (one delayed)", n)
	}
	m := mustGet(t, q, 5*time.Second)
	if m.Value != "now" {
		t.Fatalf("got %q first", m.Value)
	}
	_ = m.Done(ctx)
	m = mustGet(t, q, 5*time.Second)
	if waited := time.Since(start); m.Value != "later" || waited < 500*time.Millisecond {
		t.Fatalf("got %q after %v, want later after at least 500ms", m.Value, waited)
	}
	_ = m.Done(ctx)
}

func deadLetters(t *testing.T, b dist.Backend) {
	q := open[string](t, b)
	ctx := ctxFor(t, 10*time.Second)
	_ = q.Put(ctx, "poison")
	m := mustGet(t, q, 5*time.Second)
	if err := m.Dead(ctx, errors.New("cannot parse")); err != nil {
		t.Fatal(err)
	}
	dead, err := q.DeadLetters(ctx, 10)
	if err != nil || len(dead) != 1 {
		t.Fatalf("dead letters %v, %v", dead, err)
	}
	if dead[0].Reason != "cannot parse" || dead[0].Attempts != 1 || string(dead[0].Data) != `"poison"` || dead[0].ID != m.ID() {
		t.Fatalf("dead letter %+v", dead[0])
	}
	if n := unfinished(t, q); n != 0 {
		t.Fatalf("a dead message is unfinished: %d", n)
	}
	if st, err := q.Stats(ctx); err != nil || st.Dead != 1 {
		t.Fatalf("stats %+v, %v", st, err)
	}
}

// wrong is a value of another type than the queue's.
type wrong struct{ Name string }

func undecodable(t *testing.T, b dist.Backend) {
	q := open[int](t, b)
	ctx := ctxFor(t, 10*time.Second)
	// Put a value of another type on the same queue.
	other, err := dist.Open[wrong](ctx, b, q.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Put(ctx, wrong{"not an int"}); err != nil {
		t.Fatal(err)
	}
	if err := q.Put(ctx, 42); err != nil {
		t.Fatal(err)
	}
	m := mustGet(t, q, 5*time.Second)
	if m.Value != 42 {
		t.Fatalf("got %d", m.Value)
	}
	_ = m.Done(ctx)
	oneDeadLetter(t, q, "cannot decode")
	if n := unfinished(t, q); n != 0 {
		t.Fatalf("unfinished %d: the undecodable message would come back", n)
	}
}

func noOutcome(t *testing.T, b dist.Backend) {
	q := open[int](t, b, dist.AckWait(150*time.Millisecond), dist.MaxAttempts(2))
	ctx := ctxFor(t, 10*time.Second)
	_ = q.Put(ctx, 1)
	for attempt := 1; attempt <= 2; attempt++ {
		m := mustGet(t, q, 5*time.Second)
		if m.Attempt() != attempt {
			t.Fatalf("attempt %d, want %d", m.Attempt(), attempt)
		}
		// The worker crashes: no outcome at all.
	}
	// Its third delivery is not handed out: Get buries it and waits on.
	nothingWithin(t, q, 600*time.Millisecond)
	_ = q.Put(ctx, 2)
	m := mustGet(t, q, 5*time.Second)
	if m.Value != 2 {
		t.Fatalf("got %d: the message nobody settled came a third time", m.Value)
	}
	_ = m.Done(ctx)
	oneDeadLetter(t, q, "without an outcome")
}

// oneDeadLetter checks that q has one dead letter and that its reason
// says why.
func oneDeadLetter[T any](t *testing.T, q *dist.Queue[T], why string) {
	t.Helper()
	dead, err := q.DeadLetters(context.Background(), 10)
	if err != nil || len(dead) != 1 || !strings.Contains(dead[0].Reason, why) {
		t.Fatalf("dead letters %+v, %v; want one, %q", dead, err, why)
	}
}

func priorities(t *testing.T, b dist.Backend) {
	q := open[int](t, b, dist.Levels(3))
	ctx := ctxFor(t, 20*time.Second)
	for i := range 20 {
		_ = q.Put(ctx, 100+i, dist.Priority(0))
		_ = q.Put(ctx, 200+i, dist.Priority(1))
		_ = q.Put(ctx, 300+i, dist.Priority(2))
	}
	var got []int
	for range 60 {
		m := mustGet(t, q, 5*time.Second)
		got = append(got, m.Value)
		_ = m.Done(ctx)
	}
	level := func(v int) int { return v/100 - 1 }
	// The first 7 gets: levels 2,2,2,2,1,1,0 in some order (weights 4:2:1).
	counts := [3]int{}
	for _, v := range got[:7] {
		counts[level(v)]++
	}
	if counts != [3]int{1, 2, 4} {
		t.Fatalf("first 7 gets by level %v (values %v), want 1 low, 2 middle, 4 high", counts, got[:7])
	}
	// Within a level, first in first out.
	last := [3]int{-1, -1, -1}
	for _, v := range got {
		if v <= last[level(v)] {
			t.Fatalf("level %d out of order: %v", level(v), got)
		}
		last[level(v)] = v
	}
	if err := q.Put(ctx, 1, dist.Priority(3)); !errors.Is(err, loom.ErrInvalidArgument) {
		t.Fatalf("priority 3 on a 3-level queue: %v", err)
	}
}

func duplicates(t *testing.T, b dist.Backend) {
	q := open[string](t, b)
	ctx := ctxFor(t, 10*time.Second)
	for range 3 {
		if err := q.Put(ctx, "once", dist.Key("k1")); err != nil {
			t.Fatal(err)
		}
	}
	_ = q.Put(ctx, "other", dist.Key("k2"))
	if n := unfinished(t, q); n != 2 {
		t.Fatalf("unfinished %d, want 2: duplicate keys kept", n)
	}
}

func badInput(t *testing.T, b dist.Backend) {
	ctx := ctxFor(t, 10*time.Second)
	q := open[string](t, b, dist.MaxValueBytes(64))
	if err := q.Put(ctx, strings.Repeat("x", 100)); !errors.Is(err, dist.ErrTooLarge) {
		t.Fatalf("oversized value: %v", err)
	}
	if n := unfinished(t, q); n != 0 {
		t.Fatalf("a refused value was stored: %d", n)
	}
	if err := q.Put(ctx, "x", dist.After(-time.Second)); !errors.Is(err, loom.ErrInvalidArgument) {
		t.Fatalf("negative delay: %v", err)
	}
	for _, name := range []string{"", "a b", "a.b", "a>", strings.Repeat("x", 65)} {
		if _, err := dist.Open[int](ctx, b, name); !errors.Is(err, loom.ErrInvalidArgument) {
			t.Errorf("queue name %q: %v", name, err)
		}
	}
	if _, err := dist.Open[int](ctx, b, "ok", dist.Levels(9)); !errors.Is(err, loom.ErrInvalidArgument) {
		t.Fatalf("9 levels: %v", err)
	}
	if err := dist.Serve[string](ctx, q, nil); !errors.Is(err, loom.ErrInvalidArgument) {
		t.Fatalf("nil handler: %v", err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Put(ctx, "x"); !errors.Is(err, dist.ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
	if _, err := q.Get(ctx); !errors.Is(err, dist.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
}

// headers checks that a message's headers travel with it, through a
// delay, a priority level and a retry, into the dead letters; that Serve's
// handler sees them and the trace context (same trace, the message's own
// parent ID); and that bad headers are refused.
func headers(t *testing.T, b dist.Backend) {
	ctx := ctxFor(t, 20*time.Second)
	q := open[string](t, b, dist.Levels(2))
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	tctx, err := dist.WithTraceparent(ctx, tp)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Put(tctx, "a", dist.Header("Tenant", "acme"), dist.Priority(1), dist.After(50*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	m := mustGet(t, q, 5*time.Second)
	if m.Header("Tenant") != "acme" || m.Header("Other") != "" {
		t.Fatalf("headers after a delay: Tenant %q, Other %q", m.Header("Tenant"), m.Header("Other"))
	}
	got := m.Header(dist.HeaderTraceparent)
	if !strings.HasPrefix(got, tp[:36]) || got == tp || !strings.HasSuffix(got, "-01") {
		t.Fatalf("traceparent %q; want trace %s with a new parent ID, sampled", got, tp[3:35])
	}
	if err := m.Retry(ctx, 0); err != nil {
		t.Fatal(err)
	}
	// Served: the handler sees the headers and the trace context, and its
	// own puts carry that trace on.
	seen := make(chan [3]string, 1)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	served := make(chan error, 1)
	go func() {
		served <- dist.Serve(sctx, q, func(ctx context.Context, v string) error {
			seen <- [3]string{dist.MessageHeader(ctx, "Tenant"), dist.Traceparent(ctx), fmt.Sprint(dist.Attempt(ctx))}
			return policy.Permanent(errors.New("to the dead letters"))
		}, dist.Workers(1))
	}()
	var in [3]string
	select {
	case in = <-seen:
	case <-ctx.Done():
		t.Fatal("the retried message never came")
	}
	stop()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if in != [3]string{"acme", got, "2"} {
		t.Fatalf("the handler saw header, traceparent, attempt %q; want %q", in, [3]string{"acme", got, "2"})
	}
	dead, err := q.DeadLetters(ctx, 10)
	if err != nil || len(dead) != 1 {
		t.Fatalf("dead letters %v, %v", dead, err)
	}
	if dead[0].Header["Tenant"] != "acme" || dead[0].Header[dist.HeaderTraceparent] != got {
		t.Fatalf("the dead letter's headers %v", dead[0].Header)
	}
	// Bad headers are refused, before anything is stored.
	for _, h := range []dist.PutOption{
		dist.Header("", "v"), dist.Header("a b", "v"), dist.Header("Nats-Msg-Id", "x"), dist.Header("nats-expected-stream", "x"),
		dist.Header("k", "line\r\nbreak"), dist.Header("k", "nul\x00"), dist.Header("k", strings.Repeat("v", dist.MaxHeaderBytes)),
		dist.Header(strings.Repeat("k", 65), "v"),
	} {
		if err := q.Put(ctx, "bad", h); !errors.Is(err, loom.ErrInvalidArgument) && !errors.Is(err, dist.ErrTooLarge) {
			t.Errorf("a bad header: %v", err)
		}
	}
	for _, bad := range []string{"", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331", tp + "-",
		"00-00000000000000000000000000000000-b7ad6b7169203331-01", "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
		"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"} {
		if _, err := dist.WithTraceparent(ctx, bad); !errors.Is(err, loom.ErrInvalidArgument) {
			t.Errorf("traceparent %q: %v", bad, err)
		}
	}
	if n := unfinished(t, q); n != 0 {
		t.Fatalf("refused puts were stored: %d unfinished", n)
	}
}

// existing checks the Existing option: no queue is made, the stored
// settings are found, and (on a backend that deletes) a Put after the
// queue is deleted fails with ErrNoQueue rather than bringing it back.
func existing(t *testing.T, b dist.Backend) {
	ctx := ctxFor(t, 10*time.Second)
	name := fmt.Sprintf("existing-%d", queueSeq.Add(1))
	if _, err := dist.Open[int](ctx, b, name, dist.Existing()); !errors.Is(err, dist.ErrNoQueue) {
		t.Fatalf("Existing on a queue nobody made: %v", err)
	}
	q, err := dist.Open[int](ctx, b, name, dist.Levels(2), dist.AckWait(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	found, err := dist.Open[int](ctx, b, name, dist.Existing())
	if err != nil {
		t.Fatal(err)
	}
	defer found.Close()
	if err := found.Put(ctx, 7, dist.Priority(1)); err != nil {
		t.Fatalf("a Put at level 1 of the found queue: %v", err)
	}
	if m := mustGet(t, q, 5*time.Second); m.Value != 7 {
		t.Fatalf("got %d", m.Value)
	} else if err := m.Done(ctx); err != nil {
		t.Fatal(err)
	}
	d, ok := b.(dist.Deleter)
	if !ok {
		return
	}
	if err := d.DeleteQueue(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := found.Put(ctx, 8); !errors.Is(err, dist.ErrNoQueue) {
		t.Fatalf("a Put after the queue was deleted: %v", err)
	}
	if _, err := dist.Open[int](ctx, b, name, dist.Existing()); !errors.Is(err, dist.ErrNoQueue) {
		t.Fatalf("the deleted queue came back: %v", err)
	}
}

func serveRetries(t *testing.T, b dist.Backend) {
	q := open[string](t, b, dist.MaxAttempts(3))
	ctx := ctxFor(t, 30*time.Second)
	var mu sync.Mutex
	tries := map[string][]time.Time{}
	handler := func(ctx context.Context, v string) error {
		mu.Lock()
		tries[v] = append(tries[v], time.Now())
		n := len(tries[v])
		mu.Unlock()
		switch {
		case v == "flaky" && n < 3:
			return errors.New("not yet")
		case v == "permanent":
			return policy.Permanent(errors.New("never"))
		case v == "always":
			return errors.New("still failing")
		case v == "panics" && n == 1:
			panic("boom")
		}
		return nil
	}
	for _, v := range []string{"flaky", "permanent", "always", "panics", "fine"} {
		if err := q.Put(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	retry := policy.Backoff{Base: 100 * time.Millisecond, Max: time.Second, Jitter: policy.NoJitter}
	go func() { served <- dist.Serve(sctx, q, handler, dist.Workers(3), dist.RetryBackoff(retry)) }()
	if err := q.Join(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]int{"flaky": 3, "permanent": 1, "always": 3, "panics": 2, "fine": 1}
	for v, n := range want {
		if len(tries[v]) != n {
			t.Errorf("%s ran %d times, want %d", v, len(tries[v]), n)
		}
	}
	for _, v := range []string{"flaky", "always"} {
		for i := 1; i < len(tries[v]); i++ {
			if gap, min := tries[v][i].Sub(tries[v][i-1]), retry.Delay(i); gap < min {
				t.Errorf("%s: attempt %d came %v after the one before, sooner than the policy's %v", v, i+1, gap, min)
			}
		}
	}
	dead, _ := q.DeadLetters(ctx, 10)
	reasons := map[string]string{}
	for _, d := range dead {
		reasons[string(d.Data)] = fmt.Sprintf("%d %s", d.Attempts, d.Reason)
	}
	if len(dead) != 2 || reasons[`"permanent"`] != "1 never" || reasons[`"always"`] != "3 still failing" {
		t.Fatalf("dead letters %v", reasons)
	}
}

// A handler that runs for over three AckWaits is not redelivered: Serve
// extends its message while it runs.
func serveExtends(t *testing.T, b dist.Backend) {
	q := open[int](t, b, dist.AckWait(900*time.Millisecond)) // extended every 300ms
	ctx := ctxFor(t, 30*time.Second)
	if err := q.Put(ctx, 1); err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int64
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- dist.Serve(sctx, q, func(ctx context.Context, v int) error {
			runs.Add(1)
			time.Sleep(3 * time.Second)
			return nil
		}, dist.Workers(2))
	}()
	if err := q.Join(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("a long handler ran %d times: its message was not extended", n)
	}
}

func drainUnderLoad(t *testing.T, b dist.Backend) {
	q := open[int](t, b, dist.AckWait(2*time.Second))
	ctx := ctxFor(t, 60*time.Second)
	const n = 400
	for i := range n {
		if err := q.Put(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	done := map[int]int{}
	var handled atomic.Int64
	consume := func(q *dist.Queue[int]) {
		for {
			m, err := q.Get(ctx)
			if err != nil {
				return
			}
			time.Sleep(time.Millisecond)
			if err := m.Done(ctx); err != nil {
				t.Error(err)
				continue
			}
			mu.Lock()
			done[m.Value]++
			mu.Unlock()
			handled.Add(1)
		}
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { consume(q) })
	}
	for handled.Load() < n/4 {
		time.Sleep(5 * time.Millisecond)
	}
	if err := q.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if _, err := q.Get(ctx); !errors.Is(err, dist.ErrClosed) {
		t.Fatalf("Get after Drain: %v", err)
	}
	// Another consumer takes the rest: nothing was lost, nothing repeated.
	rest, err := dist.Open[int](ctx, b, q.Name(), dist.AckWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer rest.Close()
	var wg2 sync.WaitGroup
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	for range 4 {
		wg2.Go(func() {
			for {
				m, err := rest.Get(cctx)
				if err != nil {
					return
				}
				if err := m.Done(ctx); err == nil {
					mu.Lock()
					done[m.Value]++
					mu.Unlock()
				}
			}
		})
	}
	if err := rest.Join(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	wg2.Wait()
	for i := range n {
		if done[i] != 1 {
			t.Fatalf("value %d done %d times", i, done[i])
		}
	}
}
