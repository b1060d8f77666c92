// Package monitor is loom's live console, Go's missing aiomonitor and
// tokio-console: it serves what the registry knows (every task with its
// parent, state, age and where it was created; recent terminations with
// their errors; pools, queues, semaphores, breakers, limiters and loops with
// their figures and waiters; debug events) as JSON, as a web page, and as
// Prometheus metrics, beside pprof and the Go runtime's own figures
// (scheduler latency, goroutines by state, GC pauses).
//
// Start it with Serve (loopback only by default) or mount Handler in a
// server of your own. Tasks can be cancelled from it: POST
// /api/tasks/{id}/cancel. A monitor listening beyond loopback refuses that
// unless it was given a token (WithToken), which requests must then carry.
//
// Endpoints: / (the page), /api/snapshot (everything at once, with the
// long-blocked tasks), /api/tasks, /api/summary (counts by kind and
// state, nothing listed), /api/tasks/{id}, /api/tasks/{id}/stack
// (also /tasks/{id}/stack), POST /api/tasks/{id}/cancel (also
// /tasks/{id}/cancel), /api/resources, /api/events, /api/runtime,
// /metrics, /debug/pprof/.
//
// The snapshot and the task list hold at most DefaultTaskLimit tasks unless
// asked for another limit (limit=N, 0 for all), with tasks_total and
// whether they were truncated, in the order sort= names (SortID, the
// default, SortNewest, SortName, SortState): past the limit, the server's
// order decides which tasks are in. /api/tasks pages with after= (the last
// ID of the page before; with sort=name or sort=state also after_key=, its
// name or state: the answer's next and next_key) and filters by kind=,
// state=, name= (a prefix) and parent=. The counts (/api/summary, the
// snapshot's, loom_tasks) come from counts the registry's lists keep: no
// request but a listing walks the tasks.
//
// The requests about one task (/api/tasks/{id}, its stack, its cancel)
// take the task's parent as a listing showed it (parent=ID): the registry
// keeps no index by ID, which would cost every task, so it walks only
// where the task can be, and with its parent that is one of the parent's
// few lists. The page and loom top always pass it.
//
// /metrics follows Prometheus's naming practice, one metric per meaning:
// loom_<kind>_<figure>{name} (loom_pool_queued, loom_queue_len,
// loom_loop_busy_ratio_10s), counters ending in _total
// (loom_pool_completed_total, loom_retry_retries_total), durations as
// histograms in seconds (loom_loop_iteration_seconds,
// loom_pool_wait_seconds, loom_pool_run_seconds), a breaker's state as
// loom_breaker_state{name,state}, live tasks as loom_tasks{kind,state}.
// Resource names are user input, so at most MaxNamesPerKind per kind are
// exported. A Grafana dashboard for these metrics is in
// monitor/grafana/loom.json.
package monitor
