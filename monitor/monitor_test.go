package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"loom"
	"loom/internal/registry"
	"loom/pipeline"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func get(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if v != nil {
		if s, ok := v.(*string); ok {
			*s = string(body)
		} else if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s: %v in %s", url, err, body)
		}
	}
	return resp.StatusCode
}

func post(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, nil)
	req.Header.Set(ActionHeader, "cancel")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// serve runs the monitor on a loopback port for the test.
func serve(t *testing.T, opts ...Option) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, ln, opts...) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		http.DefaultClient.CloseIdleConnections()
	})
	return "http://" + ln.Addr().String()
}

func TestAPIShowsAndCancelsTasks(t *testing.T) {
	base := serve(t)
	ctx := context.Background()
	g := loom.NewGroup(ctx, loom.WithName("crawler"))
	started := make(chan struct{})
	worker := loom.Spawn(g, "fetch-page", func(ctx context.Context) (int, error) {
		close(started)
		<-ctx.Done()
		return 0, context.Cause(ctx)
	})
	<-started
	sem := loom.NewSemaphore("db-pool", 4)

	var tasks struct {
		Tasks []Task `json:"tasks"`
	}
	if code := get(t, base+"/api/tasks", &tasks); code != 200 {
		t.Fatal(code)
	}
	var found Task
	for _, tk := range tasks.Tasks {
		if tk.ID == worker.ID() {
			found = tk
		}
	}
	if found.Name != "fetch-page" || found.Parent != g.ID() || found.State != "running" || found.Location == "" || !found.Cancellable {
		t.Fatalf("task in the API: %+v", found)
	}

	var one Task
	if code := get(t, fmt.Sprintf("%s/api/tasks/%d", base, worker.ID()), &one); code != 200 || one.Name != "fetch-page" {
		t.Fatalf("%d %+v", code, one)
	}
	var stack string
	get(t, fmt.Sprintf("%s/api/tasks/%d/stack?parent=%d", base, worker.ID(), g.ID()), &stack)
	if !strings.Contains(stack, fmt.Sprintf("task %d \"fetch-page\": the goroutines running its function loom/monitor.TestAPIShowsAndCancelsTasks.func1", worker.ID())) ||
		!strings.Contains(stack, "1 goroutine(s) with this stack:\nruntime.gopark") || !strings.Contains(stack, "monitor/monitor_test.go:") {
		t.Fatalf("stack:\n%s", stack)
	}

	var res struct {
		Resources []struct {
			ID   uint64 `json:"id"`
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"resources"`
	}
	get(t, base+"/api/resources", &res)
	seen := false
	for _, r := range res.Resources {
		seen = seen || (r.Kind == "semaphore" && r.Name == "db-pool")
	}
	if !seen {
		t.Fatalf("semaphore not among %+v", res.Resources)
	}

	var short string
	get(t, fmt.Sprintf("%s/tasks/%d/stack", base, worker.ID()), &short)
	if !strings.Contains(short, "fetch-page") {
		t.Fatalf("short stack path:\n%s", short)
	}
	code, body := post(t, fmt.Sprintf("%s/tasks/%d/cancel", base, worker.ID()), "")
	if code != 200 {
		t.Fatalf("cancel: %d %s", code, body)
	}
	if _, err := worker.Wait(ctx); err == nil || !strings.Contains(err.Error(), "cancelled from the monitor") {
		t.Fatalf("the task ended with %v", err)
	}
	_ = g.Wait()
	if code, _ := post(t, fmt.Sprintf("%s/api/tasks/%d/cancel", base, worker.ID()), ""); code != 404 {
		t.Fatalf("cancel of an ended task: %d", code)
	}
	if code := get(t, base+"/api/tasks/abc", nil); code != 400 {
		t.Fatalf("bad id: %d", code)
	}
	_ = sem.TryAcquire(1)
}

// A monitor reachable beyond loopback cancels only with its token.
// wideListener is a loopback listener that reports a wildcard address, so
// that ServeListener treats it as reachable beyond loopback while the test
// still listens on loopback only.
type wideListener struct{ net.Listener }

func (w wideListener) Addr() net.Addr {
	a := *w.Listener.Addr().(*net.TCPAddr)
	a.IP = net.IPv4zero
	return &a
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// Beyond loopback the monitor needs a token, for everything: stacks,
// profiles and the command line included (issue 13 item 10).
func TestBeyondLoopbackEverythingNeedsTheToken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := ServeListener(context.Background(), wideListener{ln}); !errors.Is(err, ErrNeedToken) {
		t.Fatalf("ServeListener beyond loopback without a token: %v, want ErrNeedToken", err)
	}

	ctx := context.Background()
	task := loom.Go(ctx, "sleeper", func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() })
	defer task.Cancel(nil)
	h, _ := newHandler([]Option{listenOn("0.0.0.0:9190"), WithToken("s3cret")})
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, path := range []string{"/", "/api/snapshot", "/metrics", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=2", fmt.Sprintf("/api/tasks/%d/stack", task.ID())} {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if code, body := do(t, req); code != 403 || !strings.Contains(body, "token") {
			t.Errorf("GET %s without the token: %d %.80s", path, code, body)
		}
		req.Header.Set("Authorization", "Bearer wrong")
		if code, _ := do(t, req); code != 403 {
			t.Errorf("GET %s with a wrong token: %d", path, code)
		}
		req.Header.Set("Authorization", "Bearer s3cret")
		if code, _ := do(t, req); code != 200 {
			t.Errorf("GET %s with the token: %d", path, code)
		}
	}
	// The page, opened once with ?token=, gets a same-site cookie.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(srv.URL + "/?token=s3cret")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || len(cookies) != 1 || cookies[0].SameSite != http.SameSiteStrictMode || !cookies[0].HttpOnly {
		t.Fatalf("/?token=: %d %v", resp.StatusCode, cookies)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/api/snapshot", nil)
	req.AddCookie(cookies[0])
	if code, _ := do(t, req); code != 200 {
		t.Fatalf("snapshot with the page's cookie: %d", code)
	}
	req, _ = http.NewRequest("POST", fmt.Sprintf("%s/api/tasks/%d/cancel", srv.URL, task.ID()), nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	req.Header.Set(ActionHeader, "cancel")
	if code, body := do(t, req); code != 200 {
		t.Fatalf("cancel with the token: %d %s", code, body)
	}
	if _, err := task.Wait(ctx); err == nil {
		t.Fatal("the task was not cancelled")
	}
	if _, err := Handler(WithToken("")); !errors.Is(err, loom.ErrInvalidArgument) {
		t.Fatal(err)
	}
	if _, err := Handler(WithAllowedHosts("host:80")); !errors.Is(err, loom.ErrInvalidArgument) {
		t.Fatal(err)
	}
	if !isLoopback("127.0.0.1:1") || !isLoopback("[::1]:1") || !isLoopback("localhost:1") || isLoopback(":9190") || isLoopback("10.0.0.1:1") {
		t.Fatal("isLoopback")
	}
}

// On loopback, a foreign Host header is refused (DNS rebinding), and a
// state change needs ActionHeader and a same-origin request (CSRF; issue
// 13 item 9): a cross-site form post with text/plain cannot cancel.
func TestLoopbackRefusesRebindingAndCrossSiteRequests(t *testing.T) {
	base := serve(t)
	ctx := context.Background()
	task := loom.Go(ctx, "victim", func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() })
	defer task.Cancel(nil)
	cancelURL := fmt.Sprintf("%s/api/tasks/%d/cancel", base, task.ID())

	req, _ := http.NewRequest("GET", base+"/api/snapshot", nil)
	req.Host = "evil.example:9190"
	if code, body := do(t, req); code != 403 || !strings.Contains(body, "rebinding") {
		t.Fatalf("snapshot with a foreign Host: %d %.100s", code, body)
	}
	for _, host := range []string{"localhost:9190", "127.0.0.1", "[::1]:9190", strings.TrimPrefix(base, "http://")} {
		req, _ := http.NewRequest("GET", base+"/api/snapshot", nil)
		req.Host = host
		if code, _ := do(t, req); code != 200 {
			t.Fatalf("snapshot with Host %q: %d", host, code)
		}
	}

	for _, tc := range []struct {
		name    string
		headers map[string]string
	}{
		{"cross-site form", map[string]string{"Origin": "http://evil.example", "Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site"}},
		{"cross-site with the header", map[string]string{"Origin": "http://evil.example", ActionHeader: "cancel"}},
		{"simple same-site request without the header", map[string]string{"Content-Type": "text/plain"}},
	} {
		req, _ := http.NewRequest("POST", cancelURL, strings.NewReader("x"))
		for k, v := range tc.headers {
			req.Header.Set(k, v)
		}
		if code, _ := do(t, req); code != 403 {
			t.Errorf("%s: %d, want 403", tc.name, code)
		}
	}
	if task.State() != loom.Running {
		t.Fatal("a refused request cancelled the task")
	}
	req, _ = http.NewRequest("POST", cancelURL, nil)
	req.Header.Set(ActionHeader, "cancel")
	if code, body := do(t, req); code != 200 {
		t.Fatalf("cancel with the header: %d %s", code, body)
	}
	if _, err := task.Wait(ctx); err == nil {
		t.Fatal("the task was not cancelled")
	}
}

// The monitor refuses to cancel the task that serves it (issue 13 item 11).
func TestMonitorWillNotCancelItself(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := loom.Go(ctx, "monitor", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, ServeListener(ctx, ln)
	})
	defer func() {
		stop()
		if _, err := served.Wait(context.Background()); err != nil {
			t.Error(err)
		}
		http.DefaultClient.CloseIdleConnections()
	}()
	base := "http://" + ln.Addr().String()
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/tasks/%d/cancel", base, served.ID()), nil)
	req.Header.Set(ActionHeader, "cancel")
	if code, body := do(t, req); code != 409 || !strings.Contains(body, "serves this monitor") {
		t.Fatalf("cancel the monitor's own task: %d %s", code, body)
	}
	if code := get(t, base+"/api/snapshot", nil); code != 200 {
		t.Fatalf("the monitor stopped answering: %d", code)
	}
}

func TestPageMetricsRuntimeAndPprof(t *testing.T) {
	base := serve(t)
	q := loom.NewQueue[int]("jobs", 10)
	_ = q.TryPut(1)
	var html string
	if code := get(t, base+"/", &html); code != 200 || !strings.Contains(html, "loom monitor") || !strings.Contains(html, "api/snapshot") {
		t.Fatalf("page: %d", code)
	}
	var metrics string
	get(t, base+"/metrics", &metrics)
	for _, want := range []string{`loom_queue_len{name="jobs"} 1`, "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("metrics lack %q:\n%s", want, metrics)
		}
	}
	var rt Runtime
	if code := get(t, base+"/api/runtime", &rt); code != 200 || rt.Goroutines == 0 || rt.GoMaxProcs == 0 {
		t.Fatalf("runtime %+v", rt)
	}
	var snap Snapshot
	if code := get(t, base+"/api/snapshot", &snap); code != 200 || snap.Runtime.Goroutines == 0 {
		t.Fatalf("snapshot %d", code)
	}
	var idx string
	if code := get(t, base+"/debug/pprof/", &idx); code != 200 || !strings.Contains(idx, "goroutine") {
		t.Fatalf("pprof: %d", code)
	}
	_ = q.Len()
}

// A task waiting on the same semaphore for longer than the threshold is
// listed as blocked.
func TestSnapshotListsLongBlockedTasks(t *testing.T) {
	base := serve(t, WithBlockedAfter(20*time.Millisecond))
	sem := loom.NewSemaphore("scarce", 1)
	_ = sem.Acquire(context.Background(), 1)
	task := loom.Go(context.Background(), "starved", func(ctx context.Context) (int, error) {
		return 0, sem.Acquire(ctx, 1)
	})
	for sem.Waiting() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(30 * time.Millisecond)
	var snap Snapshot
	get(t, base+"/api/snapshot", &snap)
	if len(snap.Blocked) != 1 || snap.Blocked[0].Task != task.ID() || snap.Blocked[0].Resource != "scarce" ||
		snap.Blocked[0].TaskName != "starved" || snap.Blocked[0].WaitingSeconds < 0.02 {
		t.Fatalf("blocked: %+v", snap.Blocked)
	}
	_ = sem.Release(1)
	if _, err := task.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := Handler(WithBlockedAfter(0)); !errors.Is(err, loom.ErrInvalidArgument) {
		t.Fatal(err)
	}
}

// The task list at scale: a limit, a cursor, filters by kind, state, name
// prefix and parent, with the total and whether the answer was truncated;
// the summary counts without listing; bad parameters are refused.
func TestTaskListLimitsCursorAndFilters(t *testing.T) {
	base := serve(t)
	ctx, stop := context.WithCancel(context.Background())
	g := loom.NewGroup(ctx, loom.WithName("page-group"))
	for i := range 25 {
		g.Go(fmt.Sprintf("page-member-%02d", i), func(ctx context.Context) error { <-ctx.Done(); return nil })
	}
	defer func() { stop(); _ = g.Wait() }()
	var seen []uint64
	after := uint64(0)
	for page := 0; ; page++ {
		var p TaskPage
		if code := get(t, fmt.Sprintf("%s/api/tasks?limit=10&name=page-member&after=%d", base, after), &p); code != 200 {
			t.Fatalf("page %d: %d", page, code)
		}
		if p.Total != 25-len(seen) || len(p.Tasks) != min(10, p.Total) || p.Truncated != (p.Total > 10) {
			t.Fatalf("page %d: %d tasks of %d, truncated %v", page, len(p.Tasks), p.Total, p.Truncated)
		}
		for _, tk := range p.Tasks {
			if !strings.HasPrefix(tk.Name, "page-member") || (len(seen) > 0 && tk.ID <= seen[len(seen)-1]) {
				t.Fatalf("page %d: %+v out of order or not a member", page, tk)
			}
			seen = append(seen, tk.ID)
		}
		if !p.Truncated {
			break
		}
		after = p.Next
	}
	if len(seen) != 25 {
		t.Fatalf("the pages held %d members, want 25", len(seen))
	}
	var byParent TaskPage
	get(t, fmt.Sprintf("%s/api/tasks?parent=%d&state=running&limit=0", base, g.ID()), &byParent)
	if byParent.Total != 25 || len(byParent.Tasks) != 25 {
		t.Fatalf("by parent: %d of %d", len(byParent.Tasks), byParent.Total)
	}
	var groups TaskPage
	get(t, base+"/api/tasks?kind=group&name=page-group", &groups)
	if groups.Total != 1 || groups.Tasks[0].ID != g.ID() {
		t.Fatalf("by kind: %+v", groups)
	}
	var snap Snapshot
	get(t, base+"/api/snapshot?limit=5", &snap)
	if len(snap.Tasks) != 5 || !snap.TasksTruncated || snap.TasksTotal < 26 {
		t.Fatalf("a limited snapshot: %d tasks of %d, truncated %v", len(snap.Tasks), snap.TasksTotal, snap.TasksTruncated)
	}
	var sum struct{ Counts []Count }
	get(t, base+"/api/summary", &sum)
	running := 0
	for _, c := range sum.Counts {
		if c.Kind == "task" && c.State == "running" {
			running = c.N
		}
	}
	if running < 25 {
		t.Fatalf("the summary counts %d running tasks: %+v", running, sum.Counts)
	}
	for _, bad := range []string{"limit=-1", "limit=x", "limit=2000000", "after=x", "parent=-3", "kind=thread", "state=asleep",
		"sort=random", "after_key=x", "sort=newest&after_key=x"} {
		var e map[string]string
		if code := get(t, base+"/api/tasks?"+bad, &e); code != 400 {
			t.Errorf("%s: %d", bad, code)
		}
	}
}

// The task list sorted on the server, by name, by state and newest first,
// paged with its cursor (after= and, for name and state, after_key=):
// every task once, in order, across pages.
func TestTaskListSortsAndPagesInOrder(t *testing.T) {
	base := serve(t)
	ctx, stop := context.WithCancel(context.Background())
	g := loom.NewGroup(ctx, loom.WithName("group-of-sorted"))
	// Names fall as IDs rise, so the order by name is not the order by ID.
	for i := 24; i >= 0; i-- {
		g.Go(fmt.Sprintf("sorted-%02d", i), func(ctx context.Context) error { <-ctx.Done(); return nil })
	}
	// Three tasks that stay pending: prepared, never run.
	var queued []loom.Prepared
	for i := range 3 {
		_, p := loom.Prepare(ctx, fmt.Sprintf("sorted-queued-%d", i), func(context.Context) (int, error) { return 0, nil })
		queued = append(queued, p)
	}
	defer func() {
		for _, p := range queued {
			p.Abort(context.Canceled)
		}
		stop()
		_ = g.Wait()
	}()
	// Wait until the members run, so that their state stays put.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		var p TaskPage
		get(t, base+"/api/tasks?name=sorted-&state=running&limit=0", &p)
		if p.Total == 25 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 25 members running", p.Total)
		}
	}
	pages := func(order string) []Task {
		var all []Task
		after, key := uint64(0), ""
		for page := 0; page < 10; page++ {
			var p TaskPage
			url := fmt.Sprintf("%s/api/tasks?name=sorted-&limit=6&sort=%s&after=%d", base, order, after)
			if key != "" {
				url += "&after_key=" + key
			}
			if code := get(t, url, &p); code != 200 {
				t.Fatalf("sort=%s page %d: %d", order, page, code)
			}
			all = append(all, p.Tasks...)
			if !p.Truncated {
				return all
			}
			after, key = p.Next, p.NextKey
		}
		t.Fatalf("sort=%s: more than 10 pages", order)
		return nil
	}
	for _, c := range []struct {
		order string
		less  func(a, b Task) bool
	}{
		{SortName, func(a, b Task) bool { return a.Name < b.Name || a.Name == b.Name && a.ID < b.ID }},
		{SortState, func(a, b Task) bool { return a.State < b.State || a.State == b.State && a.ID < b.ID }},
		{SortNewest, func(a, b Task) bool { return a.ID > b.ID }},
		{SortID, func(a, b Task) bool { return a.ID < b.ID }},
	} {
		all := pages(c.order)
		if len(all) != 28 {
			t.Fatalf("sort=%s: %d tasks across the pages, want 28", c.order, len(all))
		}
		for i := 1; i < len(all); i++ {
			if !c.less(all[i-1], all[i]) {
				t.Fatalf("sort=%s: %q (%d, %s) before %q (%d, %s)", c.order, all[i-1].Name, all[i-1].ID, all[i-1].State, all[i].Name, all[i].ID, all[i].State)
			}
		}
	}
	if first := pages(SortState)[0]; first.State != "pending" {
		t.Fatalf("sort=state begins with %+v, want a pending task", first)
	}
	if first := pages(SortName)[0]; first.Name != "sorted-00" {
		t.Fatalf("sort=name begins with %q", first.Name)
	}
}

// A cancelled request stops the walk over the tasks: Select returns what
// it found before, not all of them.
func TestCancelledRequestStopsTheWalk(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	g := loom.NewGroup(ctx, loom.WithName("walk-group"))
	for range 5000 {
		g.Go("walk-member", func(ctx context.Context) error { <-ctx.Done(); return nil })
	}
	defer func() { stop(); _ = g.Wait() }()
	if _, total := registry.Select(registry.Filter{NamePrefix: "walk-member"}); total != 5000 {
		t.Fatalf("%d members found, want 5000", total)
	}
	done := make(chan struct{})
	close(done)
	if _, total := registry.Select(registry.Filter{NamePrefix: "walk-member", Done: done}); total >= 5000 || total > 1024 {
		t.Fatalf("a cancelled walk found %d members; it should stop within 1,024 nodes", total)
	}
}

// TestStackOfAWrappingTask asks for the stack of a pipeline stage's
// worker, a task whose function is loom's own wrapper (its "where created"
// is the user's Map call): the stack comes from the goroutines labelled
// with its name, and shows the user's function at work.
func TestStackOfAWrappingTask(t *testing.T) {
	base := serve(t)
	ctx, cancel := context.WithCancel(context.Background())
	pl := pipeline.New(ctx, "stack-pipeline")
	entered := make(chan struct{}, 1)
	out := pipeline.Map(pipeline.From(pl, func(yield func(int) bool) { yield(1) }), "stuck-stage", func(ctx context.Context, n int) (int, error) {
		entered <- struct{}{}
		<-ctx.Done()
		return n, ctx.Err()
	})
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for range out.Items() {
		}
	}()
	defer func() {
		cancel()
		<-drained
		_ = pl.Wait()
	}()
	<-entered
	infos, _ := registry.Select(registry.Filter{NamePrefix: "stuck-stage"})
	var in registry.Info
	for _, i := range infos {
		if i.Name == "stuck-stage#0" {
			in = i
		}
	}
	if in.ID == 0 {
		t.Fatalf("no worker of the stage is listed: %+v", infos)
	}
	var stack string
	if code := get(t, fmt.Sprintf("%s/api/tasks/%d/stack?parent=%d", base, in.ID, in.Parent), &stack); code != 200 {
		t.Fatalf("%d: %s", code, stack)
	}
	if !strings.Contains(stack, fmt.Sprintf("task %d %q: the goroutines labelled with its name", in.ID, in.Name)) ||
		!strings.Contains(stack, fmt.Sprintf(`"loom.task":%q`, in.Name)) || !strings.Contains(stack, "TestStackOfAWrappingTask.func2") {
		t.Fatalf("stack:\n%s", stack)
	}
}
