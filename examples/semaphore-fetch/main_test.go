package main

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "fetched 30 pages") || strings.Contains(out.String(), "at most 6") {
		t.Fatal(out.String())
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
