package loom

import (
	"fmt"
	"log/slog"

	"loom/internal/registry"
)

// DebugEvent is a finding of a debug check: a task whose error was never
// retrieved, a task that outlived its scope's shutdown.
type DebugEvent = registry.Event

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
	registry.SetHook(f)
}

func init() { registry.SetHook(logEvent) }

func logEvent(ev DebugEvent) {
	attrs := []any{"check", ev.Check, "task", ev.Node.Name, "id", ev.Node.ID}
	if ev.Node.Location != "" {
		attrs = append(attrs, "location", ev.Node.Location)
	}
	if ev.Node.Stack != "" {
		attrs = append(attrs, "created", ev.Node.Stack)
	}
	slog.Warn("loom debug: "+ev.Message, attrs...)
}

// reportUnretrieved runs when a task's handle is garbage collected in debug
// mode: a failed task whose error nobody read is reported.
func reportUnretrieved(n *registry.Node) {
	if n.State() != Failed || n.Retrieved() {
		return
	}
	registry.Report(registry.Event{
		Check:   "unretrieved-error",
		Message: fmt.Sprintf("task %q (id %d) failed and its error was never retrieved: %v", n.Name(), n.ID(), n.Err()),
		Node:    n.Info(),
	})
}
