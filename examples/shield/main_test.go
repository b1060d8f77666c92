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
	if got := out.String(); got != "handler returned: true\nbut the save finished: order 42\n" {
		t.Fatal(got)
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
