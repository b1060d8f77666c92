package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/chromedp"

	"loom/internal/registry"
	"loom/internal/scale"
)

// BenchmarkPageInput measures, in a real headless Chromium, how long the
// monitor's page takes to answer input with 100,000 live tasks in the
// program (1,000 groups of 100; -short: 10,000): opening a group in the
// tree (its children are fetched, the tree redrawn, the next frame
// painted), opening a task's stack (the box with "loading…" painted, then
// the stack fetched and shown), and redrawing the task list as every poll
// does. Each is timed inside the page, from the
// input to the frame that shows its result, and reported as ms/input.
// Without Chromium (scripts/install-chromium.sh) it is skipped.
func BenchmarkPageInput(b *testing.B) {
	browser := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		if os.Getenv("CI") != "" {
			b.Fatal("no chromium under CI: scripts/install-chromium.sh should have installed it")
		}
		b.Skip("no chromium; scripts/install-chromium.sh installs it")
	}
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	load, err := scale.Watch(n, "page-scale", "page-scale-task", func(ctx context.Context) error { <-ctx.Done(); return nil })
	if err != nil {
		b.Fatal(err)
	}
	defer load.Close()
	groups := load.Groups
	// A group past the first page of the list, so that opening it fetches
	// its children, and one of its tasks.
	grp := groups[len(groups)-1].ID()
	kids, _ := registry.Select(registry.Filter{Parent: grp, HasParent: true, Limit: 1})
	if len(kids) == 0 {
		b.Fatal("no task in the last group")
	}

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1280, 900))...)
	defer cancelAlloc()
	page, cancelPage := chromedp.NewContext(alloc)
	defer cancelPage()
	// The browser lives as long as the context of the first Run: start it
	// on page, with no timeout, and bound only the load.
	if err := chromedp.Do(page); err != nil {
		b.Fatalf("starting chromium: %v", err)
	}
	loadCtx, cancelLoad := context.WithTimeout(page, 60*time.Second)
	defer cancelLoad()
	if err := chromedp.Do(loadCtx, chromedp.Navigate(load.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#tasks tbody tr"))); err != nil {
		b.Fatalf("loading the page: %v", err)
	}
	// Each script returns the milliseconds from the input to the frame
	// after its result is in the page.
	const frame = `await new Promise(r => requestAnimationFrame(() => r()));`
	inputs := []struct{ name, script string }{
		{"open-group", fmt.Sprintf(`(async () => { await toggle(%d, true); const t0 = performance.now(); await toggle(%d, false); %s return performance.now() - t0; })()`, grp, grp, frame)},
		{"open-stack-shown", fmt.Sprintf(`(async () => { const t0 = performance.now(); const done = showStack(%d, %d); %s const t = performance.now() - t0; await done; return t; })()`, kids[0].ID, grp, frame)},
		{"open-stack-loaded", fmt.Sprintf(`(async () => { const t0 = performance.now(); await showStack(%d, %d); %s return performance.now() - t0; })()`, kids[0].ID, grp, frame)},
		{"redraw", fmt.Sprintf(`(async () => { const t0 = performance.now(); renderTasks(); %s return performance.now() - t0; })()`, frame)},
	}
	// The cost of an open page that polls: the page's main-thread time
	// (Chromium's TaskDuration) and this process's CPU time (the monitor
	// answering, the tasks idle) over a few seconds, each as a share of
	// one core.
	b.Run(fmt.Sprintf("tasks=%d/polling", n), func(b *testing.B) {
		taskTime := func(ctx context.Context, t *chromedp.Target) (float64, error) {
			res, err := cdp.Call(ctx, t, performance.GetMetrics, cdp.Empty{})
			if err != nil {
				return 0, err
			}
			for _, m := range res.Metrics {
				if m.Name == "TaskDuration" {
					return m.Value, nil
				}
			}
			return 0, errors.New("Chromium reports no TaskDuration")
		}
		enable := func(ctx context.Context, t *chromedp.Target) (cdp.Empty, error) {
			return cdp.Call(ctx, t, performance.Enable, performance.EnableParams{})
		}
		if _, err := chromedp.Run(page, enable); err != nil {
			b.Fatal(err)
		}
		var pageCPU, serverCPU, wall float64
		for range b.N {
			before, err := chromedp.Run(page, taskTime)
			if err != nil {
				b.Fatal(err)
			}
			cpu0, t0 := processCPU(), time.Now()
			time.Sleep(3 * time.Second)
			after, err := chromedp.Run(page, taskTime)
			if err != nil {
				b.Fatal(err)
			}
			pageCPU += after - before
			serverCPU += (processCPU() - cpu0).Seconds()
			wall += time.Since(t0).Seconds()
		}
		b.ReportMetric(100*pageCPU/wall, "page-core-%")
		b.ReportMetric(100*serverCPU/wall, "server-core-%")
	})
	for _, in := range inputs {
		b.Run(fmt.Sprintf("tasks=%d/input=%s", n, in.name), func(b *testing.B) {
			total := 0.0
			for range b.N {
				ms, err := chromedp.Run(page, chromedp.Evaluate[float64](in.script, chromedp.EvalAwaitPromise))
				if err != nil {
					b.Fatalf("%s: %v", in.name, err)
				}
				total += ms
			}
			b.ReportMetric(total/float64(b.N), "ms/input")
		})
	}
}

// processCPU returns the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
