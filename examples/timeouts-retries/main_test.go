package main

import (
	"bytes"
	"testing"

	"go.uber.org/goleak"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "fresh data (err <nil>) after 3 attempts\n" {
		t.Fatal(got)
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
