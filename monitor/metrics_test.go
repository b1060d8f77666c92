package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"loom"
	"loom/dist"
	"loom/internal/registry"
	"loom/loop"
	"loom/pipeline"
	"loom/policy"
	"loom/pool"
	"loom/service"
)

// scrape reads base/metrics and parses it.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// value returns the value of the series of family name whose name label
// is label (a counter's, a gauge's, or a histogram's count).
func value(mfs map[string]*dto.MetricFamily, name, label string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "name" && l.GetValue() == label {
				switch {
				case m.Counter != nil:
					return m.GetCounter().GetValue(), true
				case m.Gauge != nil:
					return m.GetGauge().GetValue(), true
				case m.Histogram != nil:
					return float64(m.GetHistogram().GetSampleCount()), true
				}
			}
		}
	}
	return 0, false
}

// everyKind registers a resource of every kind the monitor knows, and
// returns what does work with them and what keeps them alive.
func everyKind(t *testing.T) (work func(), keep []any) {
	t.Helper()
	ctx := context.Background()
	q := loom.NewQueue[int]("lint-queue", 8)
	sem := loom.NewSemaphore("lint-sem", 2)
	lock := loom.NewLock("lint-lock")
	ev := loom.NewEvent("lint-event")
	cond := loom.NewCond("lint-cond", &sync.Mutex{})
	bar := loom.NewBarrier("lint-barrier", 2)
	p := pool.New("lint-pool", pool.WithSize(2))
	t.Cleanup(func() { _ = p.Close(ctx) })
	l, err := loop.New(loop.WithName("lint-loop"))
	if err != nil {
		t.Fatal(err)
	}
	lctx, stopLoop := context.WithCancel(ctx)
	looped := make(chan error, 1)
	go func() { looped <- l.Run(lctx) }()
	t.Cleanup(func() { stopLoop(); <-looped })
	retry := policy.NewRetry("lint-retry", policy.Attempts(2), policy.WithBackoff(policy.Backoff{}),
		policy.RetryIf(func(err error) bool { return !errors.Is(err, policy.ErrBreakerOpen) })) // an open breaker asks for 30s
	breaker := policy.NewBreaker("lint-breaker")
	bulk := policy.NewBulkhead("lint-bulkhead", 2, 2)
	rate := policy.NewRateLimit("lint-rate", 1e6, 100)
	keyed := policy.NewKeyedRateLimit("lint-keyed", 1e6, 100)
	hedge := policy.NewHedge("lint-hedge")
	budget := policy.NewBudget("lint-budget", 0.2, 10)
	// A pipeline and a task that stay live until the test ends, so that
	// they are in every scrape.
	pctx, stopPipeline := context.WithCancel(ctx)
	pl := pipeline.New(pctx, "lint-pipeline")
	feed := make(chan int)
	sq := pipeline.Map(pipeline.From(pl, func(yield func(int) bool) {
		for n := range feed {
			if !yield(n) {
				return
			}
		}
	}), "square", func(_ context.Context, n int) (int, error) { return n * n, nil })
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for range sq.Items() {
		}
	}()
	live := loom.Go(ctx, "lint-live", func(ctx context.Context) (int, error) { <-pctx.Done(); return 0, nil })
	t.Cleanup(func() {
		close(feed)
		stopPipeline()
		<-drained
		_ = pl.Wait()
		_, _ = live.Wait(ctx)
	})
	sup := service.New("lint-services")
	dq, err := dist.Open[int](ctx, dist.Memory(), "lint-dist")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dq.Close() })
	work = func() {
		for i := range 20 {
			task, err := pool.Submit(ctx, p, "lint", func(context.Context) (int, error) { return i, nil })
			if err != nil {
				t.Fatal(err)
			}
			_, _ = task.Wait(ctx)
			_, _ = policy.Do(ctx, func(context.Context) (int, error) { return 0, errors.New("no") }, retry, breaker, bulk, rate)
			_ = q.TryPut(i)
			_, _ = q.TryGet()
			_ = dq.Put(ctx, i)
			feed <- i
		}
		l.CallSoon(func() {})
	}
	return work, []any{q, sem, lock, ev, cond, bar, p, l, retry, breaker, bulk, rate, keyed, hedge, budget, pl, sup, dq}
}

// The whole /metrics output passes client_golang's promlint with no
// problem, with a resource of every kind registered; and the figures move
// while work runs.
func TestMetricsLintCleanAndMoving(t *testing.T) {
	base := serve(t)
	work, keep := everyKind(t)
	work()
	before := scrape(t, base)
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.New(resp.Body).Lint()
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	for _, want := range []string{"loom_pool_completed_total", "loom_pool_run_seconds", "loom_pool_wait_seconds", "loom_retry_calls_total",
		"loom_breaker_state", "loom_queue_len", "loom_loop_iteration_seconds", "loom_dist_queue_puts_total", "loom_pipeline_stage_in_total",
		"loom_semaphore_size", "loom_tasks"} {
		if before[want] == nil {
			t.Errorf("no %s in /metrics", want)
		}
	}
	if mf := before["loom_pool_run_seconds"]; mf != nil && mf.GetType() != dto.MetricType_HISTOGRAM {
		t.Errorf("loom_pool_run_seconds is a %v, want a histogram", mf.GetType())
	}
	work()
	after := scrape(t, base)
	for _, s := range []struct{ name, label string }{
		{"loom_pool_completed_total", "lint-pool"}, {"loom_pool_run_seconds", "lint-pool"},
		{"loom_retry_calls_total", "lint-retry"}, {"loom_dist_queue_puts_total", "lint-dist"}, {"loom_queue_puts_total", "lint-queue"},
	} {
		a, okA := value(before, s.name, s.label)
		b, okB := value(after, s.name, s.label)
		if !okA || !okB || b <= a {
			t.Errorf("%s{name=%q}: %v (%v) then %v (%v); want it to grow with the work", s.name, s.label, a, okA, b, okB)
		}
	}
	runtime.KeepAlive(keep)
}

// Resource names are user input: at most MaxNamesPerKind per kind are
// exported, the rest counted; names repeated get their ID; a name that is
// not UTF-8 is made valid.
func TestMetricsBoundNames(t *testing.T) {
	var rs []registry.ResourceInfo
	for i := range MaxNamesPerKind + 5 {
		rs = append(rs, registry.ResourceInfo{ID: uint64(i + 1), Kind: "semaphore", Name: fmt.Sprintf("s%d", i), Stats: []registry.Stat{{Name: "size", Value: 1}}})
	}
	rs[1].Name = rs[0].Name
	rs[2].Name = "bad\xffname"
	ch := make(chan prometheus.Metric, 1000)
	collectResources(ch, rs)
	close(ch)
	series, omitted := 0, 0.0
	labels := map[string]bool{}
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(m.Desc().String(), "loom_monitor_resources_omitted") {
			omitted = d.GetGauge().GetValue()
			continue
		}
		series++
		labels[d.GetLabel()[0].GetValue()] = true
	}
	if series != MaxNamesPerKind || omitted != 5 {
		t.Fatalf("%d series and %v omitted; want %d and 5", series, omitted, MaxNamesPerKind)
	}
	if !labels["s0#2"] || !labels["bad\uFFFDname"] {
		t.Fatalf("labels %v lack the repeated name with its ID or the repaired one", labels)
	}
}

// Every query of the Grafana dashboard that ships in monitor/grafana names
// metrics that /metrics has, with a resource of every kind registered.
func TestGrafanaDashboardNamesRealMetrics(t *testing.T) {
	base := serve(t)
	work, keep := everyKind(t)
	work()
	raw, err := os.ReadFile("grafana/loom.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`\bloom_[a-z0-9_]+`)
	queries := 0
	var missing []string
	// The dist queue's backend figures come from a background refresh:
	// scrape until they are there, a few times at most.
	for attempt := range 50 {
		mfs := scrape(t, base)
		missing, queries = nil, 0
		for _, p := range dash.Panels {
			for _, tg := range p.Targets {
				queries++
				for _, n := range names.FindAllString(tg.Expr, -1) {
					family := n
					for _, suffix := range []string{"_bucket", "_sum", "_count"} {
						if h := strings.TrimSuffix(n, suffix); h != n && mfs[h] != nil && mfs[h].GetType() == dto.MetricType_HISTOGRAM {
							family = h
						}
					}
					if mfs[family] == nil {
						missing = append(missing, fmt.Sprintf("%s (panel %q)", n, p.Title))
					}
				}
			}
		}
		if len(missing) == 0 || attempt == 49 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if queries < 10 || len(missing) > 0 {
		t.Fatalf("%d queries; metrics the dashboard names that /metrics lacks: %v", queries, missing)
	}
	runtime.KeepAlive(keep)
}
