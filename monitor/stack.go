package monitor

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"runtime"
	rpprof "runtime/pprof"
	"slices"
	"strings"
)

// stack answers GET /api/tasks/{id}/stack: the stacks of the goroutines
// running the task's function, grouped by stack, most goroutines first.
//
// Go has no way to read one goroutine's stack from another, and a task's
// pprof labels carry its name rather than its ID (so that tasks of one
// name share one label context and allocate nothing for it), so the
// stacks shown are those of every goroutine of the task's kind: first
// those with the task's function on their stack, found in the runtime's
// goroutine profile (the cheapest whole-program read Go offers: no
// labels, nothing formatted but the stacks that match); failing that (a
// task that wraps the user's function, such as a pipeline stage's
// worker), those labelled with its name, from the labelled profile, which
// costs about three times as much. Either holds a record of every
// goroutine's stack while the request runs (264 bytes each for the
// runtime's profile: 26 MB at 100,000 goroutines, whose own stacks take
// ten times that).
func (h *handler) stack(w http.ResponseWriter, r *http.Request) {
	n, ok := liveTask(w, r)
	if !ok {
		return
	}
	in := n.Info
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if entry := funcEntry(n.PC()); entry != 0 {
		if out := stacksRunning(entry); out != "" {
			fmt.Fprintf(w, "%s %d %q: the goroutines running its function %s now, by stack (Go cannot tell which one is this %s's)\n\n", in.Kind, in.ID, in.Name, runtime.FuncForPC(entry).Name(), in.Kind)
			_, _ = w.Write([]byte(out))
			return
		}
	}
	if in.Name == "" {
		fmt.Fprintf(w, "no goroutine is running %s %d's function now, and it has no name to find its goroutine by (it may be queued or finishing)\n", in.Kind, in.ID)
		return
	}
	stacks := stacksLabelled(fmt.Sprintf("%q:%q", "loom."+in.Kind, in.Name))
	if stacks == "" {
		fmt.Fprintf(w, "no goroutine is running %s %q now (it may be queued or finishing)\n", in.Kind, in.Name)
		return
	}
	fmt.Fprintf(w, "%s %d %q: the goroutines labelled with its name now, by stack and labels (Go cannot tell which one is this %s's)\n\n", in.Kind, in.ID, in.Name, in.Kind)
	_, _ = w.Write([]byte(stacks))
}

// funcEntry returns pc if it is the entry of a function, else 0.
func funcEntry(pc uintptr) uintptr {
	if f := runtime.FuncForPC(pc); pc != 0 && f != nil && f.Entry() == pc {
		return pc
	}
	return 0
}

// stacksRunning returns the stacks of the goroutines that have the
// function at entry on their stack, grouped, most goroutines first, or ""
// if none has.
func stacksRunning(entry uintptr) string {
	var records []runtime.StackRecord
	for n := runtime.NumGoroutine() + 64; ; n += n / 4 {
		records = make([]runtime.StackRecord, n)
		k, ok := runtime.GoroutineProfile(records)
		if ok {
			records = records[:k]
			break
		}
	}
	entries := map[uintptr]uintptr{} // return address -> entry of its function
	entryOf := func(ret uintptr) uintptr {
		e, ok := entries[ret]
		if !ok {
			if f := runtime.FuncForPC(ret - 1); f != nil {
				e = f.Entry()
			}
			entries[ret] = e
		}
		return e
	}
	counts := map[[32]uintptr]int{}
	for i := range records {
		if slices.ContainsFunc(records[i].Stack(), func(pc uintptr) bool { return entryOf(pc) == entry }) {
			counts[records[i].Stack0]++
		}
	}
	stacks := make([][32]uintptr, 0, len(counts))
	for s := range counts {
		stacks = append(stacks, s)
	}
	slices.SortFunc(stacks, func(a, b [32]uintptr) int { return counts[b] - counts[a] })
	var out strings.Builder
	for _, s := range stacks {
		fmt.Fprintf(&out, "%d goroutine(s) with this stack:\n", counts[s])
		rec := runtime.StackRecord{Stack0: s}
		frames := runtime.CallersFrames(rec.Stack())
		for {
			f, more := frames.Next()
			fmt.Fprintf(&out, "%s\n\t%s:%d\n", f.Function, f.File, f.Line)
			if !more {
				break
			}
		}
		out.WriteString("\n")
	}
	return out.String()
}

// stacksLabelled returns the goroutine-profile records whose labels
// contain label.
func stacksLabelled(label string) string {
	var buf bytes.Buffer
	_ = rpprof.Lookup("goroutine").WriteTo(&buf, 1)
	var out strings.Builder
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var rec []string
	flush := func() {
		for _, l := range rec {
			if strings.HasPrefix(l, "# labels:") && strings.Contains(l, label) {
				out.WriteString(strings.Join(rec, "\n"))
				out.WriteString("\n\n")
				break
			}
		}
		rec = rec[:0]
	}
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			flush()
			continue
		}
		rec = append(rec, line)
	}
	flush()
	return out.String()
}
