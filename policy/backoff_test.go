package policy

import (
	"context"
	"errors"
	"testing"
	"time"

	"loom"
)

// The one backoff: doubling from Base to Max, each kind of jitter within
// its bounds, and bad values refused.
func TestBackoff(t *testing.T) {
	plain := Backoff{Base: time.Second, Max: 10 * time.Second, Jitter: NoJitter}
	for n, want := range map[int]time.Duration{-1: time.Second, 1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 100: 10 * time.Second} {
		if got := plain.Delay(n); got != want {
			t.Errorf("no jitter, failure %d: %v, want %v", n, got, want)
		}
	}
	full := Backoff{Base: time.Second, Max: 10 * time.Second}
	dec := Backoff{Base: time.Second, Max: 10 * time.Second, Jitter: DecorrelatedJitter}
	for n := 1; n < 8; n++ {
		for range 200 {
			if d := full.Delay(n); d < 0 || d > plain.Delay(n) {
				t.Fatalf("full jitter, failure %d: %v outside [0, %v]", n, d, plain.Delay(n))
			}
			prev := time.Duration(n) * time.Second
			if d := dec.Next(n, prev); d < time.Second || d > min(3*prev, dec.Max) {
				t.Fatalf("decorrelated jitter after %v: %v outside [1s, %v]", prev, d, min(3*prev, dec.Max))
			}
		}
	}
	if d := (Backoff{}).Delay(3); d != 0 {
		t.Fatalf("a zero backoff waits %v", d)
	}
	for _, bad := range []Backoff{{Base: -1}, {Base: 2, Max: 1}, {Max: time.Second, Jitter: NoJitter + 1}} {
		if err := bad.Validate(); !errors.Is(err, loom.ErrInvalidArgument) {
			t.Errorf("%+v: %v", bad, err)
		}
		if _, err := Do(t.Context(), func(context.Context) (int, error) { return 1, nil }, NewRetry("bad", WithBackoff(bad))); !errors.Is(err, loom.ErrInvalidArgument) {
			t.Errorf("a Retry with %+v: %v", bad, err)
		}
	}
}
