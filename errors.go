package loom

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"
)

var (
	// ErrClosed is returned when a task is started in a Group or Scope that
	// no longer accepts tasks: its Wait or Shutdown has returned, or it was
	// cancelled. The error returned wraps ErrClosed and says why.
	ErrClosed = errors.New("loom: closed to new tasks")

	// ErrNotDone is returned by Task.Result while the task is still running.
	ErrNotDone = errors.New("loom: task not done")

	// ErrInvalidArgument is wrapped by every error that reports a bad
	// argument to a loom function: a nil context or function, a negative
	// limit or duration.
	ErrInvalidArgument = errors.New("loom: invalid argument")

	// ErrTimeout is wrapped by the error Timeout returns when the time ran
	// out. That error also matches context.DeadlineExceeded.
	ErrTimeout = errors.New("loom: timeout")

	// ErrOverRelease is wrapped by the error Semaphore.Release returns when
	// asked to release more than is held, like Python's BoundedSemaphore.
	ErrOverRelease = errors.New("loom: released more than held")

	// ErrBrokenBarrier is wrapped by the error Barrier.Wait returns when the
	// barrier was aborted, reset, or broken by a party whose context ended.
	ErrBrokenBarrier = errors.New("loom: broken barrier")

	// ErrQueueShutdown is returned by Queue.Put after Shutdown, and by
	// Queue.Get once a shut-down queue is empty.
	ErrQueueShutdown = errors.New("loom: queue shut down")

	// ErrQueueFull is returned by Queue.TryPut when a bounded queue is full.
	ErrQueueFull = errors.New("loom: queue full")

	// ErrQueueEmpty is returned by Queue.TryGet when the queue is empty.
	ErrQueueEmpty = errors.New("loom: queue empty")

	// errGoexit is what a task that called runtime.Goexit ends with.
	errGoexit = errors.New("loom: task called runtime.Goexit")
	// errTaskEnded cancels a task's own context once it has returned,
	// releasing what the context holds.
	errTaskEnded = errors.New("loom: task ended")
)

// invalid returns an error wrapping ErrInvalidArgument.
func invalid(fn, format string, args ...any) error {
	return fmt.Errorf("%s: %w: %s", fn, ErrInvalidArgument, fmt.Sprintf(format, args...))
}

// PanicError is the error of a task whose function panicked. It carries the
// panic value and the stack of the goroutine at the panic.
type PanicError struct {
	// Task is the name of the task that panicked.
	Task string
	// Value is the value passed to panic.
	Value any
	// Stack is the goroutine's stack at the panic, as runtime/debug.Stack
	// formats it.
	Stack []byte
}

func newPanicError(task string, v any) *PanicError {
	return &PanicError{Task: task, Value: v, Stack: debug.Stack()}
}

// Error returns the panic value and the stack.
func (e *PanicError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "loom: task %q panicked: %v\n\n%s", e.Task, e.Value, e.Stack)
	return b.String()
}

// Unwrap returns the panic value when it is an error, so that errors.Is and
// errors.As see through the panic.
func (e *PanicError) Unwrap() error {
	if err, ok := e.Value.(error); ok {
		return err
	}
	return nil
}

// TimeoutError is the error Timeout returns when the time ran out before the
// function returned. It matches ErrTimeout and context.DeadlineExceeded.
type TimeoutError struct {
	// After is the duration that ran out.
	After time.Duration
	// Err is what the function returned once its context had ended, or nil
	// in the cause that the function's context carries.
	Err error
}

// Error says how long the function was given, and what it returned.
func (e *TimeoutError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("loom: timed out after %v", e.After)
	}
	return fmt.Sprintf("loom: timed out after %v: %v", e.After, e.Err)
}

// Unwrap returns what the function returned.
func (e *TimeoutError) Unwrap() error { return e.Err }

// Is reports whether target is ErrTimeout or context.DeadlineExceeded.
func (e *TimeoutError) Is(target error) bool {
	return target == ErrTimeout || target == context.DeadlineExceeded
}

// LeakError is returned by Scope.Shutdown when some tasks did not stop before
// its context ended. Those tasks are still running and still registered.
type LeakError struct {
	// Scope is the name of the scope.
	Scope string
	// Tasks describes each task that did not stop.
	Tasks []TaskInfo
}

// Error names the tasks that did not stop.
func (e *LeakError) Error() string {
	names := make([]string, 0, len(e.Tasks))
	for _, t := range e.Tasks {
		names = append(names, fmt.Sprintf("%q (id %d)", t.Name, t.ID))
	}
	return fmt.Sprintf("loom: scope %q: %d task(s) did not stop: %s",
		e.Scope, len(e.Tasks), strings.Join(names, ", "))
}
