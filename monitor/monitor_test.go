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
	get(t, fmt.Sprintf("%s/api/tasks/%d/stack", base, worker.ID()), &stack)
	if !strings.Contains(stack, "TestAPIShowsAndCancelsTasks") || !strings.Contains(stack, `"loom.task":"fetch-page"`) {
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
func TestCancelNeedsATokenBeyondLoopback(t *testing.T) {
	ctx := context.Background()
	task := loom.Go(ctx, "sleeper", func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() })
	defer task.Cancel(nil)
	url := fmt.Sprintf("/api/tasks/%d/cancel", task.ID())

	exposed, _ := newHandler([]Option{exposedFor("0.0.0.0:9190")})
	srv := httptest.NewServer(exposed)
	defer srv.Close()
	code, body := post(t, srv.URL+url, "")
	if code != 403 || !strings.Contains(body, "no token") {
		t.Fatalf("exposed, no token: %d %s", code, body)
	}

	withToken, _ := newHandler([]Option{exposedFor("0.0.0.0:9190"), WithToken("s3cret")})
	srv2 := httptest.NewServer(withToken)
	defer srv2.Close()
	if code, body := post(t, srv2.URL+url, "wrong"); code != 403 || !strings.Contains(body, "wrong token") {
		t.Fatalf("wrong token: %d %s", code, body)
	}
	if code, body := post(t, srv2.URL+url, "s3cret"); code != 200 {
		t.Fatalf("right token: %d %s", code, body)
	}
	if _, err := task.Wait(ctx); err == nil {
		t.Fatal("the task was not cancelled")
	}
	if _, err := Handler(WithToken("")); !errors.Is(err, loom.ErrInvalidArgument) {
		t.Fatal(err)
	}
	if !isLoopback("127.0.0.1:1") || !isLoopback("[::1]:1") || !isLoopback("localhost:1") || isLoopback(":9190") || isLoopback("10.0.0.1:1") {
		t.Fatal("isLoopback")
	}
}

func TestPageMetricsRuntimeAndPprof(t *testing.T) {
	base := serve(t)
	q := loom.NewQueue[int]("jobs", 10)
	_ = q.TryPut(1)
	var html string
	if code := get(t, base+"/", &html); code != 200 || !strings.Contains(html, "loom monitor") || !strings.Contains(html, "/api/snapshot") {
		t.Fatalf("page: %d", code)
	}
	var metrics string
	get(t, base+"/metrics", &metrics)
	for _, want := range []string{`loom_resource{kind="queue",name="jobs",stat="len"} 1`, "go_goroutines", "process_resident_memory_bytes"} {
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
