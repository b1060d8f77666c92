package bench

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	fstimeout "github.com/failsafe-go/failsafe-go/timeout"
	"github.com/sony/gobreaker/v2"

	"loom/policy"
)

var errBench = errors.New("bench: failure")

func succeed() (int, error)                   { return 1, nil }
func succeedCtx(context.Context) (int, error) { return 1, nil }
func failBench() (int, error)                 { return 0, errBench }
func failCtx(context.Context) (int, error)    { return 0, errBench }

// BenchmarkRetry is the cost of a call through a retry policy: on the
// success path the first attempt succeeds; on the failure path all three
// attempts fail, with no wait between them.
func BenchmarkRetry(b *testing.B) {
	ctx := context.Background()
	b.Run("path=success/impl=failsafe", func(b *testing.B) {
		ex := failsafe.With(retrypolicy.NewBuilder[int]().WithMaxAttempts(3).Build())
		b.ReportAllocs()
		for b.Loop() {
			_, _ = ex.Get(succeed)
		}
	})
	b.Run("path=success/impl=loom", func(b *testing.B) {
		ex := policy.New[int](policy.NewRetry("bench", policy.Attempts(3), policy.WithBackoff(policy.Backoff{Base: 0, Max: 0})))
		b.ReportAllocs()
		for b.Loop() {
			_, _ = ex.Do(ctx, succeedCtx)
		}
	})
	b.Run("path=failure/impl=failsafe", func(b *testing.B) {
		ex := failsafe.With(retrypolicy.NewBuilder[int]().WithMaxAttempts(3).Build())
		b.ReportAllocs()
		for b.Loop() {
			_, _ = ex.Get(failBench)
		}
	})
	b.Run("path=failure/impl=loom", func(b *testing.B) {
		ex := policy.New[int](policy.NewRetry("bench", policy.Attempts(3), policy.WithBackoff(policy.Backoff{Base: 0, Max: 0})))
		b.ReportAllocs()
		for b.Loop() {
			_, _ = ex.Do(ctx, failCtx)
		}
	})
}

// BenchmarkBreaker is the cost of a call through a circuit breaker: on the
// success path the breaker is closed and the call succeeds; on the failure
// path the breaker is open and refuses the call.
func BenchmarkBreaker(b *testing.B) {
	ctx := context.Background()
	b.Run("path=success/impl=gobreaker", func(b *testing.B) {
		cb := gobreaker.NewCircuitBreaker[int](gobreaker.Settings{Name: "bench"})
		b.ReportAllocs()
		for b.Loop() {
			_, _ = cb.Execute(succeed)
		}
	})
	b.Run("path=success/impl=failsafe", func(b *testing.B) {
		ex := failsafe.With(circuitbreaker.NewWithDefaults[int]())
		b.ReportAllocs()
		for b.Loop() {
			_, _ = ex.Get(succeed)
		}
	})
	b.Run("path=success/impl=loom", func(b *testing.B) {
		ex := policy.New[int](policy.NewBreaker("bench"))
		b.ReportAllocs()
		for b.Loop() {
			_, _ = ex.Do(ctx, succeedCtx)
		}
	})
	b.Run("path=open/impl=gobreaker", func(b *testing.B) {
		cb := gobreaker.NewCircuitBreaker[int](gobreaker.Settings{Name: "bench", Timeout: time.Hour,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 1 }})
		_, _ = cb.Execute(failBench)
		b.ReportAllocs()
		for b.Loop() {
			_, _ = cb.Execute(succeed)
		}
	})
	b.Run("path=open/impl=failsafe", func(b *testing.B) {
		cb := circuitbreaker.NewBuilder[int]().WithDelay(time.Hour).Build()
		cb.Open()
		ex := failsafe.With(cb)
		b.ReportAllocs()
		for b.Loop() {
			_, _ = ex.Get(succeed)
		}
	})
	b.Run("path=open/impl=loom", func(b *testing.B) {
		br := policy.NewBreaker("bench", policy.OpenFor(time.Hour))
		br.Trip()
		ex := policy.New[int](br)
		b.ReportAllocs()
		for b.Loop() {
			_, _ = ex.Do(ctx, succeedCtx)
		}
	})
}

// BenchmarkStack is a successful call through retry, breaker and timeout
// composed, the common production stack.
func BenchmarkStack(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=failsafe", func(b *testing.B) {
		ex := failsafe.With(
			retrypolicy.NewBuilder[int]().WithMaxAttempts(3).Build(),
			circuitbreaker.NewWithDefaults[int](),
			fstimeout.New[int](time.Second),
		)
		b.ReportAllocs()
		for b.Loop() {
			_, _ = ex.Get(succeed)
		}
	})
	b.Run("impl=loom", func(b *testing.B) {
		ex := policy.New[int](
			policy.NewRetry("bench", policy.Attempts(3)),
			policy.NewBreaker("bench"),
			policy.Timeout(time.Second),
		)
		b.ReportAllocs()
		for b.Loop() {
			_, _ = ex.Do(ctx, succeedCtx)
		}
	})
}
