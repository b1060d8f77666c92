package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv("LOOM_RUN_MAIN") == "1" {
		// A child process of a test (loom worker, for demo --dist):
		// the test binary runs the command, as the loom binary would.
		os.Args = append([]string{"loom"}, os.Args[1:]...)
		main()
		return
	}
	goleak.VerifyTestMain(m)
}

// The distributed part of the demo: three worker processes, one SIGKILLed
// midway, every job done once and none lost.
func TestDemoDistLosesNothing(t *testing.T) {
	var out bytes.Buffer
	if err := runDistDemo(context.Background(), &out, distDemoConfig{jobs: 60, workers: 3}); err != nil {
		t.Fatalf("demo --dist: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{"SIGKILLed after", "jobs submitted   60", "done             60", "lost             0", "done twice       0", "failed           0"} {
		if !strings.Contains(text, want) {
			t.Fatalf("the report lacks %q:\n%s", want, text)
		}
	}
	t.Log("\n" + text)
}

func TestDemoServesFetchesAndReports(t *testing.T) {
	var out bytes.Buffer
	err := runDemo(context.Background(), &out, demoConfig{urls: 100, concurrency: 16, timeout: 100 * time.Millisecond, monitor: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	num := func(re string) int {
		t.Helper()
		m := regexp.MustCompile(re).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("output lacks %s:\n%s", re, text)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	fetched := num(`URLs fetched\s+(\d+) of 100`)
	failed := num(`failed\s+(\d+) \(`)
	timedOut := num(`\((\d+) timed out after retries`)
	// Every 10th URL is slow: longer than the timeout on every attempt, so
	// it fails, timed out or refused by its host's breaker.
	if fetched+failed != 100 || timedOut == 0 || failed < 10 {
		t.Fatalf("fetched %d, failed %d, timed out %d:\n%s", fetched, failed, timedOut, text)
	}
	// The breakdown of the failures adds up to them (issue 16 item 7).
	parts := timedOut + num(`(\d+) refused by an open breaker`) + num(`(\d+) HTTP errors after retries`) + num(`(\d+) other\)`)
	if parts != failed {
		t.Fatalf("the failures' breakdown adds up to %d, not %d:\n%s", parts, failed, text)
	}
	if num(`server\s+(\d+) requests`) < 100 || num(`(\d+) injected failures`) == 0 || num(`retried URLs\s+(\d+)`) == 0 {
		t.Fatalf("report:\n%s", text)
	}
	for _, want := range []string{"monitor: http://127.0.0.1:", "CPU pool", "loops", "elapsed"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestDemoFlags(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"demo", "--urls", "0"}, "at least 1"},
		{[]string{"demo", "--timeout", "-1s"}, "positive"},
		{[]string{"demo", "--urls", "many"}, "invalid argument"},
		{[]string{"demo", "extra"}, "unknown command"},
		{[]string{"nosuch"}, "unknown command"},
	}
	for _, c := range cases {
		root := newRoot()
		root.SetArgs(c.args)
		root.SetOut(&bytes.Buffer{})
		root.SetErr(&bytes.Buffer{})
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want it to mention %q", c.args, err, c.want)
		}
	}
}
