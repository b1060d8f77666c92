package policy

import (
	"context"
	"runtime"
	"testing"

	"loom/internal/registry"
)

// Every policy shows up in the registry under its name, with its figures.
func TestPoliciesRegisterWithTheMonitor(t *testing.T) {
	b := NewBreaker("reg-breaker")
	r := NewRetry("reg-retry")
	bh := NewBulkhead("reg-bulkhead", 1, 1)
	rl := NewRateLimit("reg-limit", 5, 5)
	k := NewKeyedRateLimit("reg-keyed", 5, 5)
	h := NewHedge("reg-hedge")
	bu := NewBudget("reg-budget", 0.1, 1)
	_, _ = Do(WithKey(context.Background(), "x"), ok, r, b, k, rl, bh)
	want := map[string]struct {
		kind string
		stat string
	}{
		"reg-breaker":  {"breaker", "state"},
		"reg-retry":    {"retry", "attempts"},
		"reg-bulkhead": {"bulkhead", "running"},
		"reg-limit":    {"rate-limit", "tokens"},
		"reg-keyed":    {"rate-limit", "keys"},
		"reg-hedge":    {"hedge", "delay_seconds"},
		"reg-budget":   {"retry-budget", "left"},
	}
	found := map[string]bool{}
	for _, res := range registry.Resources() {
		w, ok := want[res.Name]
		if !ok || res.Kind != w.kind {
			continue
		}
		for _, s := range res.Stats {
			if s.Name == w.stat {
				found[res.Name] = true
			}
		}
	}
	if len(found) != len(want) {
		t.Fatalf("registered: %v, want all of %v", found, want)
	}
	runtime.KeepAlive([]any{b, r, bh, rl, k, h, bu}) // registered weakly: keep them alive until here
}
