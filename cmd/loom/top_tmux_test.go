package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"loom"
	"loom/monitor"
)

var tmuxRuns atomic.Int64

// tmuxSession runs loom top (this test binary as the command) in a tmux
// session of its own, 140 columns by 40 rows, and returns what drives it.
func tmuxSession(t *testing.T, args ...string) (keys func(...string), screen func() string) {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("no tmux; run scripts/install-tmux.sh to run the terminal test")
	}
	socket := fmt.Sprintf("loom-top-test-%d-%d", os.Getpid(), tmuxRuns.Add(1)) // a server of its own each run
	tmux := func(a ...string) (string, error) {
		out, err := exec.Command("tmux", append([]string{"-L", socket}, a...)...).CombinedOutput()
		return string(out), err
	}
	command := fmt.Sprintf("env LOOM_RUN_MAIN=1 %s %s", os.Args[0], strings.Join(args, " "))
	if out, err := tmux("new-session", "-d", "-s", "top", "-x", "140", "-y", "40", command); err != nil {
		t.Fatalf("tmux: %v: %s", err, out)
	}
	t.Cleanup(func() { _, _ = tmux("kill-server") })
	keys = func(k ...string) {
		t.Helper()
		if out, err := tmux(append([]string{"send-keys", "-t", "top"}, k...)...); err != nil {
			t.Fatalf("tmux send-keys %v: %v: %s", k, err, out)
		}
	}
	screen = func() string {
		out, _ := tmux("capture-pane", "-p", "-t", "top")
		return out
	}
	return keys, screen
}

// waitScreen waits up to 10s for the screen to match want.
func waitScreen(t *testing.T, screen func() string, what string, want func(string) bool) string {
	t.Helper()
	var s string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if s = screen(); want(s) {
			return s
		}
	}
	t.Fatalf("the screen never showed %s:\n%s", what, s)
	return ""
}

// loom top in a real terminal (tmux): the footer with the keys, paging to
// the end of a list longer than the screen, filtering by name, the tree,
// and the selection kept across refreshes.
func TestTopInATerminal(t *testing.T) {
	h, err := monitor.Handler()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, stop := context.WithCancel(context.Background())
	g := loom.NewGroup(ctx, loom.WithName("tmux-tree"))
	for i := range 60 {
		g.Go(fmt.Sprintf("tmux-member-%02d", i), func(ctx context.Context) error { <-ctx.Done(); return nil })
	}
	needle := loom.Go(ctx, "tmux-needle", func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, nil })
	burner := loom.Go(ctx, "tmux-burner", func(ctx context.Context) (int, error) {
		sum := sha256.Sum256(nil)
		for ctx.Err() == nil {
			for range 1000 {
				sum = sha256.Sum256(sum[:])
			}
		}
		return int(sum[0]), nil
	})
	defer func() {
		stop()
		_ = g.Wait()
		_, _ = needle.Wait(context.Background())
		_, _ = burner.Wait(context.Background())
	}()

	keys, screen := tmuxSession(t, "top", strings.TrimPrefix(srv.URL, "http://"), "--interval", "200ms")
	waitScreen(t, screen, "the task list and the footer", func(s string) bool {
		return strings.Contains(s, "tmux-member-00") && strings.Contains(s, "/ filter") && strings.Contains(s, "q quit")
	})

	// Paging: the list is longer than the screen; G goes to its end.
	keys("G")
	rowsRe := regexp.MustCompile(`rows (\d+)-(\d+) of (\d+)`)
	waitScreen(t, screen, "the end of the list", func(s string) bool {
		m := rowsRe.FindStringSubmatch(s)
		return m != nil && m[2] == m[3] && m[1] != "1"
	})

	// Filter by name.
	keys("/", "n", "e", "e", "d", "l", "e", "Enter")
	s := waitScreen(t, screen, "the filtered list", func(s string) bool {
		return strings.Contains(s, "filter: needle") && strings.Contains(s, "tmux-needle") && !strings.Contains(s, "tmux-member-00")
	})
	// The needle is selected; it stays selected across refreshes.
	if !regexp.MustCompile(`(?m)^> +\d+ .*tmux-needle`).MatchString(s) {
		t.Fatalf("the only task left is not selected:\n%s", s)
	}
	time.Sleep(600 * time.Millisecond) // three refreshes
	if s := screen(); !regexp.MustCompile(`(?m)^> +\d+ .*tmux-needle`).MatchString(s) {
		t.Fatalf("the selection moved after refreshes:\n%s", s)
	}
	keys("/", "Escape") // clear the filter
	// (A key sent right after Escape would read as Alt+key: wait for it.)
	waitScreen(t, screen, "the filter cleared", func(s string) bool {
		m := rowsRe.FindStringSubmatch(s)
		return !strings.Contains(s, "filter:") && m != nil && m[3] != "1"
	})

	// The tree: members indented under their group.
	keys("t", "g")
	tree := waitScreen(t, screen, "the tree", func(s string) bool {
		return strings.Contains(s, "tree, sort") && regexp.MustCompile(`(?m)tmux-tree\s*$|tmux-tree `).MatchString(s) &&
			regexp.MustCompile(`  tmux-member-\d\d`).MatchString(s)
	})
	if path := os.Getenv("LOOM_KEEP_TOP_CAPTURE"); path != "" {
		_ = os.WriteFile(path, []byte(strings.TrimRight(tree, "\n ")+"\n"), 0o644)
	}
	// CPU by task name: the burner, with a good share (on a busy machine,
	// other work may come first).
	keys("p")
	burnerRow := regexp.MustCompile(`(?m)^\s+([\d.]+)%\s+\S+\s+task\s+tmux-burner`)
	waitScreen(t, screen, "the CPU by task name, the burner with at least 10%", func(s string) bool {
		m := burnerRow.FindStringSubmatch(s)
		if !strings.Contains(s, "CPU by task name") || m == nil {
			return false
		}
		share, _ := strconv.ParseFloat(m[1], 64)
		return share >= 10
	})
	keys("q")
	waitScreen(t, screen, "loom top ending", func(s string) bool { return !strings.Contains(s, "q quit") })
}
