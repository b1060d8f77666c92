package main

import (
	"bytes"
	"context"
	"testing"

	"go.uber.org/goleak"
	"time"
)

func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "ticker: stopped after 0 restarts\nflaky-job: stopped after 2 restarts\n" {
		t.Fatal(got)
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
