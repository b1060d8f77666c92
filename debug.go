package loom

import (
	"fmt"
	"log/slog"
	"time"

	"loom/internal/registry"
)

// DebugEvent is a finding of a debug check (see SetDebug): which check,
// what it found, and the task it is about.
type DebugEvent struct {
	Time time.Time `json:"time"`
	// Check names the check: one of the Check constants.
	Check   string `json:"check"`
	Message string `json:"message"`
	// Task is the task (or group, or scope) the event is about, as it
	// was when the check found it; for the event loop's checks, the loop.
	Task TaskInfo `json:"task"`
}

// The debug checks, as DebugEvent.Check names them.
const (
	// CheckUnretrievedError: a task failed and its handle was garbage
	// collected without anyone reading its error (asyncio's "Task
	// exception was never retrieved").
	CheckUnretrievedError = "unretrieved-error"
	// CheckLeakedTask: a task was still running when its Scope's Shutdown
	// gave up waiting for it.
	CheckLeakedTask = "leaked-task"
	// CheckSlowCallback: an event loop callback or handler ran longer than
	// the loop's slow-callback threshold (package loop, debug mode).
	CheckSlowCallback = "slow-callback"
	// CheckWrongThread: a loop-only method of an event loop was called
	// from outside the loop's goroutine (package loop, debug mode).
	CheckWrongThread = "wrong-thread"
)

func debugEvent(ev registry.Event) DebugEvent {
	return DebugEvent{Time: ev.Time, Check: ev.Check, Message: ev.Message, Task: TaskInfo(ev.Node)}
}

// SetDebug turns debug checks on or off for tasks started from now on. Debug
// mode is also on when the environment has LOOM_DEBUG=1. In debug mode loom
// records each task's creation stack, reports a failed task whose error
// nobody retrieved (when its handle is garbage collected, like asyncio's
// "Task exception was never retrieved"), and reports each task still
// running when its scope's Shutdown gives up.
func SetDebug(on bool) { registry.SetDebug(on) }

// SetRegistry turns the registry on or off for tasks, groups and scopes
// created from now on. With it off they cost less, but the monitor does not
// see them, they have ID 0, no times and no pprof labels. It is on unless
// the environment has LOOM_REGISTRY=off.
func SetRegistry(on bool) { registry.SetEnabled(on) }

// SetDebugHandler sends each debug event to f instead of the default, which
// logs it with log/slog at warning level. A nil f restores the default.
// Events are also kept for the monitor either way.
func SetDebugHandler(f func(DebugEvent)) {
	if f == nil {
		f = logEvent
	}
	registry.SetHook(func(ev registry.Event) { f(debugEvent(ev)) })
}

func init() { SetDebugHandler(nil) }

func logEvent(ev DebugEvent) {
	attrs := []any{"check", ev.Check, "task", ev.Task.Name, "id", ev.Task.ID}
	if ev.Task.Location != "" {
		attrs = append(attrs, "location", ev.Task.Location)
	}
	if ev.Task.Stack != "" {
		attrs = append(attrs, "created", ev.Task.Stack)
	}
	slog.Warn("loom debug: "+ev.Message, attrs...)
}

// reportUnretrieved runs when a task's handle is garbage collected in debug
// mode: a failed task whose error nobody read is reported.
func reportUnretrieved(n *registry.Node) {
	if n.State() != registry.Failed || n.Retrieved() {
		return
	}
	registry.Report(registry.Event{
		Check:   CheckUnretrievedError,
		Message: fmt.Sprintf("task %q (id %d) failed and its error was never retrieved: %v", n.Name(), n.ID(), n.Err()),
		Node:    n.Info(),
	})
}
