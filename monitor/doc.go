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
// long-blocked tasks), /api/tasks, /api/tasks/{id}, /api/tasks/{id}/stack
// (also /tasks/{id}/stack), POST /api/tasks/{id}/cancel (also
// /tasks/{id}/cancel), /api/resources, /api/events, /api/runtime,
// /metrics, /debug/pprof/.
package monitor
