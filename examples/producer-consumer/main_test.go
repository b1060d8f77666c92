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
	// 0+1+...+49 = 1225, plus 1000*50 + 1225 for the second producer.
	if got := out.String(); got != "handled 100 jobs, sum 52450\n" {
		t.Fatal(got)
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
