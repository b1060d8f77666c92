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
	if got := out.String(); got != "820 words in 4 batches\n" { // 1+2+...+40
		t.Fatal(got)
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
