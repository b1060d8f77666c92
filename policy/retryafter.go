package policy

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// retryAfter is an error that asks for a wait before the next attempt.
type retryAfter struct {
	err error
	d   time.Duration
}

func (e *retryAfter) Error() string             { return e.err.Error() }
func (e *retryAfter) Unwrap() error             { return e.err }
func (e *retryAfter) RetryAfter() time.Duration { return e.d }

// RetryAfter wraps err with a server's request to wait d before trying
// again, as a 429 or 503 response's Retry-After header says: a Retry then
// waits at least d. Any error with a method RetryAfter() time.Duration
// (a breaker's ErrBreakerOpen error, a rate limiter's) works the same way.
// RetryAfter(nil, d) is nil.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfter{err: err, d: d}
}

// retryAfterOf finds the wait an error asks for.
func retryAfterOf(err error) (time.Duration, bool) {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		return ra.RetryAfter(), true
	}
	return 0, false
}

// ParseRetryAfter parses the value of a Retry-After header: either a number
// of seconds or an HTTP date, which is taken relative to now. It reports
// false for anything else, including negative seconds. A date in the past
// gives 0.
func ParseRetryAfter(value string, now time.Time) (time.Duration, bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, false
	}
	if value[0] >= '0' && value[0] <= '9' {
		secs, err := strconv.ParseInt(value, 10, 64)
		if err != nil || secs < 0 || secs > int64(24*time.Hour/time.Second)*365 {
			return 0, false
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(value)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}
