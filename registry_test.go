package loom

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"loom/internal/registry"
)

func findInfo(infos []TaskInfo, id uint64) (TaskInfo, bool) {
	for _, in := range infos {
		if in.ID == id {
			return in, true
		}
	}
	return TaskInfo{}, false
}

func TestRegistryShowsLiveTasksAndHistory(t *testing.T) {
	release := make(chan struct{})
	g := NewGroup(context.Background(), WithName("crawl"))
	started := make(chan struct{})
	g.Go("fetch", func(ctx context.Context) error { close(started); <-release; return errors.New("404") })
	<-started

	snap := registry.Snapshot()
	gi, ok := findInfo(snap, g.ID())
	if !ok || gi.Kind != "group" || gi.Name != "crawl" || gi.State != "running" {
		t.Fatalf("group not in snapshot: %+v", gi)
	}
	var task TaskInfo
	for _, in := range snap {
		if in.Parent == g.ID() {
			task = in
		}
	}
	if task.Name != "fetch" || task.Kind != "task" || task.State != "running" || task.Created.IsZero() {
		t.Fatalf("task in snapshot: %+v", task)
	}
	if !strings.Contains(task.Location, "registry_test.go") {
		t.Fatalf("location %q", task.Location)
	}
	close(release)
	g.Wait()

	if _, ok := findInfo(registry.Snapshot(), task.ID); ok {
		t.Fatal("finished task still live in the registry")
	}
	ended, ok := findInfo(registry.Terminated(), task.ID)
	if !ok || ended.State != "failed" || ended.Err != "404" || ended.Ended.IsZero() {
		t.Fatalf("terminated record %+v", ended)
	}
	if _, ok := findInfo(registry.Terminated(), g.ID()); !ok {
		t.Fatal("group not in terminated history")
	}
}

func TestRegistryHistoryIsBounded(t *testing.T) {
	g := NewGroup(context.Background())
	for range registry.HistorySize * 2 {
		g.Go("", func(ctx context.Context) error { return nil })
	}
	g.Wait()
	if n := len(registry.Terminated()); n != registry.HistorySize {
		t.Fatalf("history holds %d, want %d", n, registry.HistorySize)
	}
}

func TestRegistryOff(t *testing.T) {
	SetRegistry(false)
	defer SetRegistry(true)
	task := Go(context.Background(), "quiet", func(ctx context.Context) (int, error) { return 1, nil })
	task.Wait(context.Background())
	g := NewGroup(context.Background())
	g.Go("", func(ctx context.Context) error { return nil })
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if task.ID() != 0 || g.ID() != 0 {
		t.Fatalf("ids %d %d with the registry off", task.ID(), g.ID())
	}
}

func TestRegistryCancelThroughNode(t *testing.T) {
	task := Go(context.Background(), "cancellable", func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, context.Cause(ctx)
	})
	n := registry.Lookup(task.ID())
	if n == nil || !n.Info().Cancellable {
		t.Fatalf("lookup = %v", n)
	}
	why := errors.New("cancelled from the monitor")
	n.Cancel(why)
	if _, err := task.Wait(context.Background()); err != why {
		t.Fatalf("err = %v", err)
	}
}

func TestPprofLabels(t *testing.T) {
	release := make(chan struct{})
	g := NewGroup(context.Background(), WithName("labelled"))
	var ready sync.WaitGroup
	ready.Add(2)
	g.Go("worker", func(ctx context.Context) error { ready.Done(); <-release; return nil })
	task := Go(context.Background(), "solo", func(ctx context.Context) (int, error) { ready.Done(); <-release; return 0, nil })
	ready.Wait()
	var buf bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&buf, 1)
	close(release)
	g.Wait()
	task.Wait(context.Background())
	out := buf.String()
	for _, want := range []string{`"loom.group":"labelled"`, `"loom.task":"worker"`, `"loom.task":"solo"`} {
		if !strings.Contains(out, want) {
			t.Errorf("goroutine profile lacks %s", want)
		}
	}
}

func TestDebugReportsUnretrievedError(t *testing.T) {
	SetDebug(true)
	defer SetDebug(false)
	got := make(chan DebugEvent, 4)
	SetDebugHandler(func(ev DebugEvent) { got <- ev })
	defer SetDebugHandler(nil)

	func() {
		task := Go(context.Background(), "forgotten", func(ctx context.Context) (int, error) { return 0, errors.New("lost error") })
		<-task.Done()
		retrieved := Go(context.Background(), "checked", func(ctx context.Context) (int, error) { return 0, errors.New("seen") })
		retrieved.Wait(context.Background())
	}()
	deadline := time.After(10 * time.Second)
	for {
		runtime.GC()
		select {
		case ev := <-got:
			if ev.Check != "unretrieved-error" || ev.Node.Name != "forgotten" || !strings.Contains(ev.Message, "lost error") {
				t.Fatalf("event %+v", ev)
			}
			if !strings.Contains(ev.Node.Stack, "TestDebugReportsUnretrievedError") {
				t.Fatalf("creation stack %q", ev.Node.Stack)
			}
			// The retrieved one must not be reported: give its cleanup a chance.
			runtime.GC()
			time.Sleep(50 * time.Millisecond)
			select {
			case ev := <-got:
				t.Fatalf("unexpected event %+v", ev)
			default:
			}
			return
		case <-deadline:
			t.Fatal("no report for a failed task whose error was never retrieved")
		case <-time.After(10 * time.Millisecond):
		}
	}
}
