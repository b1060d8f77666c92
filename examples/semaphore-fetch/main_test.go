package main

import (
	"bytes"
	"regexp"
	"strconv"
	"testing"

	"go.uber.org/goleak"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	// The semaphore's point: fetches overlap, never more than 5 at once.
	m := regexp.MustCompile(`fetched 30 pages, \d+ bytes, at most (\d+) at once`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatal(out.String())
	}
	if peak, _ := strconv.Atoi(m[1]); peak < 2 || peak > 5 {
		t.Fatalf("at most %d fetches at once; want 2 to 5 (the limit): %s", peak, out.String())
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
