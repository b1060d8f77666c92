package monitor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"loom"
	"loom/internal/registry"
	"loom/loop"
	"loom/policy"
	"loom/pool"
)

// chromium finds the browser. Under CI it must be there (scripts/
// install-chromium.sh puts it there); elsewhere the test is skipped.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium under CI: scripts/install-chromium.sh should have installed it")
	}
	t.Skip("no chromium; run scripts/install-chromium.sh to run the browser test")
	return ""
}

// The page, rendered by a real headless browser, shows the live tasks and
// resources that its script fetches from the API.
func TestPageInHeadlessChromium(t *testing.T) {
	browser := chromium(t)
	h, err := Handler()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	task := loom.Go(context.Background(), "browser-visible-task", func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, nil
	})
	defer func() { task.Cancel(nil); task.Wait(context.Background()) }()
	sem := loom.NewSemaphore("browser-visible-semaphore", 3)
	// A resource with parts, as a distributed pool lists its workers.
	type poolLike struct{ _ int }
	pl := &poolLike{}
	registry.Track(pl, registry.KindDistPool, "browser-visible-pool", func(_ *poolLike, f *registry.Figures) {
		f.Part("worker browser-host/7", "lost", registry.Stat{Name: "running", Value: 1})
	})

	// Something for every chart: a group with members (the tree), a pool
	// kept busy, a loop, a breaker, a queue.
	ctx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	g := loom.NewGroup(ctx, loom.WithName("browser-group"))
	for i := range 3 {
		g.Go(fmt.Sprintf("browser-member-%d", i), func(ctx context.Context) error { <-ctx.Done(); return nil })
	}
	defer func() { stopWork(); _ = g.Wait() }()
	p := pool.New("browser-pool", pool.WithSize(2))
	defer p.Close(context.Background())
	l, err := loop.New(loop.WithName("browser-loop"))
	if err != nil {
		t.Fatal(err)
	}
	looped := make(chan error, 1)
	go func() { looped <- l.Run(ctx) }()
	defer func() { stopWork(); <-looped }()
	breaker := policy.NewBreaker("browser-breaker")
	q := loom.NewQueue[int]("browser-queue", 100)
	worked := make(chan struct{})
	go func() {
		defer close(worked)
		for i := 0; ctx.Err() == nil; i++ {
			if task, err := pool.Submit(ctx, p, "browser-work", func(context.Context) (int, error) { return i, nil }); err == nil {
				_, _ = task.Wait(ctx)
			}
			_, _ = policy.Do(ctx, func(context.Context) (int, error) { return i, nil }, breaker)
			_ = q.TryPut(i % 7)
			if i%2 == 0 {
				_, _ = q.TryGet()
			}
			l.CallSoon(func() {})
			time.Sleep(time.Millisecond)
		}
	}()
	defer func() { stopWork(); <-worked }()
	var member uint64
	for _, in := range registry.Snapshot() {
		if in.Name == "browser-member-1" {
			member = in.ID
		}
	}

	dir := t.TempDir()
	// The background-networking flags keep Chromium from reaching for
	// Google's hosts, which this machine's closed network refuses.
	base := []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + filepath.Join(dir, "profile"), "--virtual-time-budget=5000", "--window-size=1280,900"}
	// A browser killed by a signal (it has crashed with SIGSEGV on a
	// machine kept busy by other work) gets one more try: that is the
	// browser's fault, not the page's. Any other failure fails the test.
	run := func(args ...string) []byte {
		for attempt := 1; ; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			cmd := exec.CommandContext(ctx, browser, append(base, args...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			cancel()
			if err == nil {
				return out
			}
			var exit *exec.ExitError
			if attempt < 2 && errors.As(err, &exit) && !exit.Exited() && ctx.Err() == nil {
				t.Logf("chromium %v crashed (%v); trying once more", args, err)
				continue
			}
			t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
		}
	}

	// The tree expanded and a member's stack opened from the address, as
	// a click would.
	page := fmt.Sprintf("%s/#expand=all&stack=%d&parent=%d", srv.URL, member, g.ID())
	dom := string(run("--dump-dom", page))
	for _, want := range []string{"browser-visible-task", "browser-visible-semaphore", "goroutines", "updated",
		`worker browser-host/7 <span class="state-lost">lost</span> running=1`,
		"browser-group", "browser-member-2", "3 running", // the group's row counts its members
		fmt.Sprintf(`Stack of task <span id="stack-id">%d</span>`, member), "goroutine", // the stack, opened
	} {
		if !strings.Contains(dom, want) {
			t.Fatalf("the rendered page lacks %q:\n%.6000s", want, dom)
		}
	}
	// Every chart has drawn its lines: the page counts, in each chart's
	// plot area, the pixels of its series' colors.
	drawn := regexp.MustCompile(`id="chart-([a-z-]+)" class="chart"[^>]*data-drawn="([^"]*)"`).FindAllStringSubmatch(dom, -1)
	if len(drawn) != 8 {
		t.Fatalf("%d charts drawn, want 8: %v\n%.3000s", len(drawn), drawn, dom)
	}
	for _, d := range drawn {
		if n, err := strconv.Atoi(d[2]); err != nil || n < 10 {
			t.Errorf("chart %s: %s pixels of its series drawn", d[1], d[2])
		}
	}
	// A list truncated to one task: the group opened from the address
	// loads its members.
	small := string(run("--dump-dom", fmt.Sprintf("%s/#limit=1&open=%d", srv.URL, g.ID())))
	for _, want := range []string{"the first 1 by ID shown", "browser-member-0", "browser-member-2"} {
		if !strings.Contains(small, want) {
			t.Fatalf("the truncated page lacks %q:\n%.6000s", want, small)
		}
	}
	shot := filepath.Join(dir, "monitor.png")
	run("--screenshot="+shot, page)
	png, err := os.ReadFile(shot)
	if err != nil || len(png) < 10_000 || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot: %d bytes, %v", len(png), err)
	}
	if os.Getenv("LOOM_KEEP_SCREENSHOT") != "" {
		_ = os.WriteFile(os.Getenv("LOOM_KEEP_SCREENSHOT"), png, 0o644)
	}
	_ = sem.Size()
	runtime.KeepAlive(pl)
}
