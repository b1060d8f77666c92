package loom

import (
	"context"
	"maps"
	"runtime/pprof"
	"sync/atomic"

	"loom/internal/registry"
)

// The pprof labels of loom's goroutines: loom.group or loom.scope with the
// name of a group or scope, and loom.task with the name of a task.
//
// Making a label context costs three allocations. Under a context that
// carries no labels of its own, which is the usual case, the labels depend
// only on the names, so the contexts are made once and shared: a group
// made per request under one name, or a task started again and again
// under one name, allocates nothing for its labels.

// labelKey is what a label context made under an unlabelled context
// depends on: the kind and name of a group or scope and, for one of its
// tasks, the task's name; for a task of its own, KindTask and its name.
type labelKey struct {
	kind registry.Kind
	name string
	task string
}

var labelNames = map[registry.Kind]string{
	registry.KindGroup: "loom.group",
	registry.KindScope: "loom.scope",
	registry.KindTask:  "loom.task",
}

func (k labelKey) labels() pprof.LabelSet {
	if k.task == "" {
		return pprof.Labels(labelNames[k.kind], k.name)
	}
	return pprof.Labels(labelNames[k.kind], k.name, "loom.task", k.task)
}

// maxSharedLabels bounds the shared label contexts; past it, new names get
// contexts of their own.
const maxSharedLabels = 256

// shared holds the shared label contexts. The map is copied on write.
var shared atomic.Pointer[map[labelKey]context.Context]

// labelsFor returns the label context for goroutines started under parent
// with the labels of key (whose task is empty), and whether it depends on
// key alone: it does when parent carries no labels.
func labelsFor(parent context.Context, key labelKey) (context.Context, bool) {
	inherited := false
	pprof.ForLabels(parent, func(string, string) bool { inherited = true; return false })
	if inherited {
		return pprof.WithLabels(parent, key.labels()), false
	}
	if c, ok := sharedLabels(key); ok {
		return c, true
	}
	return pprof.WithLabels(context.Background(), key.labels()), true
}

// sharedLabels returns the shared label context for key, making it if
// there is room; false if there is none.
func sharedLabels(key labelKey) (context.Context, bool) {
	m := shared.Load()
	if m != nil {
		if c, ok := (*m)[key]; ok {
			return c, true
		}
		if len(*m) >= maxSharedLabels {
			return nil, false
		}
	}
	c := pprof.WithLabels(context.Background(), key.labels())
	next := make(map[labelKey]context.Context, 1)
	if m != nil {
		maps.Copy(next, *m)
	}
	next[key] = c
	shared.CompareAndSwap(m, &next) // a lost race only costs the cache this key
	return c, true
}
