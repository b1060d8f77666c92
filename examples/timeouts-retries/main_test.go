package main

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// The example shows what it names: the retry gets through a slow and an
// overloaded answer; in the outage the breaker opens and the fallback
// answers; once the backend is back a probe closes the breaker (issue 16
// item 5: with the defaults, its breaker could never open). How often the
// breaker half-opens during the outage depends on timing, so the test
// checks the transitions that must happen, not their count.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !strings.HasPrefix(got, "fresh data (err <nil>) after 3 attempts\n") {
		t.Fatalf("the retry did not get through:\n%s", got)
	}
	for _, want := range []string{"breaker: closed -> open\n", "during the outage: cached data", "breaker: half-open -> closed\n"} {
		if !strings.Contains(got, want) {
			t.Fatalf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "during the outage: cached data") != 2 || !strings.HasSuffix(got, "after it: fresh data (err <nil>), breaker closed\n") {
		t.Fatalf("the breaker did not recover:\n%s", got)
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
