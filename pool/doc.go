// Package pool runs blocking and CPU-bound work off the caller's goroutine,
// on a bounded set of workers: asyncio's run_in_executor with its thread and
// process pools, done for Go.
//
// A Pool is a goroutine pool. Submit returns a *loom.Task for each piece of
// work, so results, errors, panics (recovered into *loom.PanicError),
// cancellation and the registry work as for any task. On top of a plain
// pool it adds a deadline per task counted from submission (Timeout,
// Deadline), priorities (Priority), a bounded queue with a blocking Submit
// and a non-blocking TrySubmit (ErrPoolFull), Wait for everything submitted
// so far, workers that retire when idle, Resize at run time, a Close that drains or fails the tasks that never ran,
// and metrics with wait-time and run-time histograms.
//
// Three Timeouts, one per place a deadline can start: loom.Timeout bounds
// one call made now (asyncio's wait_for) and says so with a
// *loom.TimeoutError; policy.Timeout is the same bound as a policy, to
// compose with Retry, Breaker and the rest (inside a Retry, each attempt
// gets its own);
// pool.Timeout is a Submit option whose deadline counts from submission,
// so that work that waited too long in the queue never runs.
//
// When not to use it: goroutines are cheap, and a loom.Group with
// loom.WithLimit is enough to bound the concurrency of one batch of work. A
// Pool is for a limit shared by many callers over time, with a queue,
// priorities and a live view.
//
// A ProcessPool runs registered Go functions in child processes of the same
// binary, so work that runs away can be killed: a goroutine cannot be.
//
// The pool is written by hand, not wrapped around ants or pond: neither
// gives context-aware submission with loom tasks as results, per-task
// deadlines that drop queued work, or priorities.
package pool
