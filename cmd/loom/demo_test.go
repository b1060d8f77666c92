package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestDemoCrawlsAndReports(t *testing.T) {
	var out bytes.Buffer
	// Pages 10, 20, 30 and 40 are slower than the timeout; 25 and 50 fail.
	err := runDemo(context.Background(), &out, demoConfig{pages: 50, concurrency: 8, timeout: time.Second})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"pages fetched    44 of 50",
		"failed           6 ( 4 timed out )",
		"race winner      mirror 20ms",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if !regexp.MustCompile(`(?m)^  10\s+failed\s+0\s+loom: timed out after 1s`).MatchString(text) {
		t.Errorf("page 10 is not reported as timed out:\n%s", text)
	}
}

func TestDemoFlags(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"demo", "--pages", "0"}, "at least 1"},
		{[]string{"demo", "--timeout", "-1s"}, "positive"},
		{[]string{"demo", "--pages", "many"}, "invalid argument"},
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
