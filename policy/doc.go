// Package policy makes calls resilient: Timeout, Retry (exponential
// backoff with full or decorrelated jitter, Retry-After, a shared retry
// Budget), circuit Breaker (count or time windows, failure-rate and
// slow-call-rate thresholds, half-open probes), Bulkhead, RateLimit and
// KeyedRateLimit, Hedge and Fallback, in the manner of resilience4j and
// failsafe-go.
//
// Policies compose: Do(ctx, fn, p1, p2, ...) runs fn inside p2 inside p1.
// The recommended order, outermost first, is
//
//	Fallback, Retry or Hedge, Breaker, RateLimit, Bulkhead, Timeout
//
// Build an Executor with New for a hot path. Every policy instance is
// created with a name, is safe for concurrent use, registers its state and
// counters with the monitor, and may be shared by calls of any result type.
// Each returns a typed error a caller can match: ErrExhausted,
// ErrBreakerOpen, ErrBulkheadFull, ErrRateLimited, loom.ErrTimeout. Errors
// that carry a RetryAfter (a refused breaker or limiter, an error wrapped
// with RetryAfter) make an outer Retry wait at least that long.
//
// Three Timeouts, one per place a deadline can start: loom.Timeout bounds
// one call made now (asyncio's wait_for) and says so with a
// *loom.TimeoutError; policy.Timeout is the same bound as a policy, to
// compose with Retry, Breaker and the rest (inside a Retry, each attempt
// gets its own);
// pool.Timeout is a Submit option whose deadline counts from submission,
// so that work that waited too long in the queue never runs.
//
// When not to use it: one plain timeout is context.WithTimeout; a fixed
// limit on concurrency is a loom.Semaphore. The token bucket is
// golang.org/x/time/rate; the breaker, retry and hedge are written here
// because their peers' APIs allocate on every call or lack slow-call
// rates, budgets and quantile hedging.
package policy
