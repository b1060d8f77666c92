// Package loom runs Go work as tasks: goroutines with names, results,
// parents, cancellation and an entry in a live registry that the monitor
// shows. It is asyncio's create_task, TaskGroup, gather, wait_for, shield
// and as_completed, done the Go way, with context as the language of
// cancellation.
//
// Start a single task with Go and wait for it with Task.Wait. Run tasks
// that must end together in a Group: the first failure cancels the rest,
// panics become errors that carry the stack, and Wait returns only when
// every task has returned. Gather, GatherAll, Race, WaitAny and AsCompleted
// cover the common shapes of fan-out; Timeout bounds a call and Shield
// protects work from its caller's cancellation. Background work that lives
// as long as a server goes in a Scope, whose Shutdown cancels it, waits with
// a deadline and names what did not stop.
//
// Tasks coordinate with asyncio's primitives, each taking a context
// wherever it blocks: Semaphore (weighted, FIFO-fair, resizable), Lock,
// Event, Cond, Barrier, and Queue (FIFO, LIFO or priority, with TaskDone,
// Join and Shutdown). Those made with a constructor register with the
// monitor, which sees their counts and which tasks wait on them.
//
// When not to use it: a plain go statement with a sync.WaitGroup remains
// the cheapest way to run goroutines that can neither fail nor need to be
// seen; golang.org/x/sync/errgroup is enough when you need neither results,
// names nor a live view. loom costs a little more per task (see the
// benchmarks in bench/) for what it records.
//
// Three Timeouts, one per place a deadline can start: loom.Timeout bounds
// one call made now (asyncio's wait_for) and says so with a
// *loom.TimeoutError; policy.Timeout is the same bound as a policy, to
// compose with Retry, Breaker and the rest (inside a Retry, each attempt
// gets its own);
// pool.Timeout is a Submit option whose deadline counts from submission,
// so that work that waited too long in the queue never runs.
//
// Every task, group, scope and named primitive registers itself; the registry can be turned
// off with SetRegistry(false) or LOOM_REGISTRY=off. Debug mode
// (SetDebug(true) or LOOM_DEBUG=1) records creation stacks, reports failed
// tasks whose error nobody retrieved and tasks that outlive their scope.
// Goroutines of tasks carry pprof labels (loom.task, loom.group,
// loom.scope), so goroutine profiles show their names.
package loom
