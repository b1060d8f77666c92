package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"loom"
	"loom/dist"
	"loom/monitor"
)

// A monitor in this process with one named task to look at.
func monitored(t *testing.T) (addr string, task *loom.Task[int]) {
	t.Helper()
	h, err := monitor.Handler()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	running := make(chan struct{})
	task = loom.Go(context.Background(), "top-test-worker", func(ctx context.Context) (int, error) {
		close(running)
		<-ctx.Done()
		return 0, context.Cause(ctx)
	})
	t.Cleanup(func() { task.Cancel(nil); task.Wait(context.Background()) })
	// The task is pending until its goroutine runs, which on a loaded
	// machine can be after the first snapshot: the tests look for it
	// running.
	<-running
	return strings.TrimPrefix(srv.URL, "http://"), task
}

func runLoom(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestTopOncePrintsTasks(t *testing.T) {
	addr, task := monitored(t)
	out, err := runLoom(t, "top", addr, "--once")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "TASKS") || !strings.Contains(out, "top-test-worker") || !strings.Contains(out, "running") {
		t.Fatalf("output:\n%s", out)
	}
	out, err = runLoom(t, "top", addr, "--once", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var snap monitor.Snapshot
	if err := json.Unmarshal([]byte(out), &snap); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, tk := range snap.Tasks {
		found = found || tk.ID == task.ID()
	}
	if !found {
		t.Fatal("task missing from the JSON snapshot")
	}
	if _, err := runLoom(t, "top", "127.0.0.1:1", "--once"); err == nil || !strings.Contains(err.Error(), "no monitor") {
		t.Fatalf("no monitor: %v", err)
	}
}

// The interactive view, driven message by message: refresh, sort, select,
// details with the stack, and cancel with confirmation.
func TestTopInteractiveCancelsWithConfirmation(t *testing.T) {
	addr, task := monitored(t)
	c := &topClient{base: "http://" + addr, http: nil}
	c.http = newHTTPClient()
	m := newTopModel(c, time.Hour)
	run := func(cmd tea.Cmd) {
		if cmd != nil {
			if msg := cmd(); msg != nil {
				m.Update(msg)
			}
		}
	}
	run(m.Init())
	if !strings.Contains(m.View(), "top-test-worker") {
		t.Fatalf("view:\n%s", m.View())
	}
	// Select the task: sort by name puts loom's tasks in a known order;
	// move the cursor onto ours.
	for i, tk := range m.tasks() {
		if tk.ID == task.ID() {
			m.cursor = i
		}
	}
	_, cmd := m.Update(tea.KeyMsg{Type: tea.KeyEnter})
	run(cmd)
	if m.detail == nil || m.detail.ID != task.ID() || !strings.Contains(m.View(), "top_test.go") {
		t.Fatalf("detail view:\n%s", m.View())
	}
	m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("c")})
	if !m.confirm || !strings.Contains(m.View(), "(y/n)") {
		t.Fatalf("no confirmation:\n%s", m.View())
	}
	_, cmd = m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("y")})
	run(cmd)
	if _, err := task.Wait(context.Background()); err == nil || !strings.Contains(err.Error(), "monitor") {
		t.Fatalf("task ended with %v", err)
	}
	if !strings.Contains(m.status, "cancelled task") {
		t.Fatalf("status %q", m.status)
	}
	m.Update(tea.KeyMsg{Type: tea.KeyTab})
	if !strings.Contains(m.View(), "[resources]") {
		t.Fatal("tab did not switch views")
	}
	if _, cmd := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")}); cmd == nil {
		t.Fatal("q does not quit")
	} else if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Fatal("q does not quit")
	}
}

// A distributed pool's remote workers show under its resource, with their
// state from their heartbeats: here one that served and left.
func TestTopShowsRemoteWorkers(t *testing.T) {
	addr, _ := monitored(t)
	b := dist.Memory()
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- dist.ServePool(ctx, b, "top-workers", nil) }()
	p, err := dist.NewPool(context.Background(), b, "top-workers")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := dist.Remote(p, hashFunc)(context.Background(), hashJob{Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	var out string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if out, err = runLoom(t, "top", addr, "--once"); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "LEFT running=0 done=1") {
			return
		}
	}
	t.Fatalf("no remote worker that left, with its job, in:\n%s", out)
}

// A monitor (or whatever answers in its place) that sends more than
// MaxAnswerBytes gets an error that says so, not a top that reads on.
func TestTopBoundsWhatItReads(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("parent") != "7" {
			http.Error(w, "no parent", http.StatusBadRequest)
			return
		}
		chunk := bytes.Repeat([]byte("x"), 1<<20)
		for range MaxAnswerBytes>>20 + 1 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	c := &topClient{base: srv.URL, http: newHTTPClient()}
	_, err := c.stack(context.Background(), 42, 7)
	if err == nil || !strings.Contains(err.Error(), "longer than MaxAnswerBytes") {
		t.Fatalf("err = %v", err)
	}
	exact := &boundedReader{r: bytes.NewReader(make([]byte, 10)), left: 10}
	if b, err := io.ReadAll(exact); len(b) != 10 || err != nil {
		t.Fatalf("an answer of exactly the bound: %d bytes, %v", len(b), err)
	}
}

// Sorting by name when the program has more tasks than a snapshot holds:
// the next poll asks the monitor for that order, so the first rows are the
// first names of all tasks, not of the first thousand by ID.
func TestTopSortsOnTheServer(t *testing.T) {
	addr, _ := monitored(t)
	ctx, stop := context.WithCancel(context.Background())
	g := loom.NewGroup(ctx, loom.WithName("top-sorted"))
	n := monitor.DefaultTaskLimit + 200
	for i := n - 1; i >= 0; i-- { // the smallest names have the largest IDs
		g.Go(fmt.Sprintf("aaa-sorted-%04d", i), func(ctx context.Context) error { <-ctx.Done(); return nil })
	}
	defer func() { stop(); _ = g.Wait() }()
	c := &topClient{base: "http://" + addr, http: newHTTPClient()}
	m := newTopModel(c, time.Hour)
	for m.sortBy = 0; sortNames[m.sortBy] != "name"; {
		m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("s")})
	}
	msg := m.fetch()()
	if _, cmd := m.Update(msg); cmd == nil {
		t.Fatal("a poll scheduled no next poll")
	}
	if !m.snap.TasksTruncated || len(m.list) == 0 || m.list[0].t.Name != "aaa-sorted-0000" {
		t.Fatalf("truncated %v, first row %+v", m.snap.TasksTruncated, m.list[0].t)
	}
	extra := msg.(snapMsg)
	extra.extra = true
	if _, cmd := m.Update(extra); cmd != nil {
		t.Fatal("a poll outside the rhythm scheduled another")
	}
}
