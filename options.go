package loom

import (
	"context"
	"fmt"
)

// Option configures a Group or a Scope. Each option says which of the two it
// applies to; giving one to the other makes the constructor return an
// object that refuses every task with an error saying so.
type Option func(*options)

type options struct {
	name      string
	limit     int
	supervise bool
	onError   func(TaskInfo, error)
	errs      []error
}

// WithName names a Group or Scope, as the registry, the monitor and
// goroutine profiles show it.
func WithName(name string) Option {
	return func(o *options) { o.name = name }
}

// WithLimit bounds how many of a Group's tasks run at once: Go and Spawn
// block until a slot is free (or the group is cancelled). n must be at
// least 1. Group only.
func WithLimit(n int) Option {
	return func(o *options) {
		if n < 1 {
			o.errs = append(o.errs, fmt.Errorf("WithLimit(%d): the limit must be at least 1", n))
			return
		}
		o.limit = n
	}
}

// Supervise keeps a Group's tasks running when one fails, instead of
// cancelling them; Wait still returns every failure. Group only.
func Supervise() Option {
	return func(o *options) { o.supervise = true }
}

// OnError passes each failure of a Scope's task to f, from the failed
// task's goroutine, as it happens. f runs as the last part of the task:
// Shutdown returns only after every f it started has returned, so f must
// not call Shutdown itself (it would wait for its own task; cancel the
// scope's parent context instead). Without OnError, a Scope keeps
// failures (at most 1024, then a count) for Shutdown to return. Scope
// only.
func OnError(f func(TaskInfo, error)) Option {
	return func(o *options) {
		if f == nil {
			o.errs = append(o.errs, fmt.Errorf("OnError(nil): the handler must not be nil"))
			return
		}
		o.onError = f
	}
}

// build applies opts and returns the configuration, and the first problem
// with it, wrapped as an invalid argument of where.
func build(where string, ctx context.Context, opts []Option) (options, error) {
	if len(opts) == 0 && ctx != nil {
		return options{}, nil // the options would escape to the heap below
	}
	return buildFrom(where, ctx, opts)
}

func buildFrom(where string, ctx context.Context, opts []Option) (options, error) {
	var o options
	for _, opt := range opts {
		if opt == nil {
			o.errs = append(o.errs, fmt.Errorf("nil option"))
			continue
		}
		opt(&o)
	}
	if ctx == nil {
		o.errs = append([]error{fmt.Errorf("nil context")}, o.errs...)
	}
	if len(o.errs) > 0 {
		return o, invalid(where, "%v", o.errs[0])
	}
	return o, nil
}
