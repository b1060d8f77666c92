// Package loop is an event loop for Go: an epoll reactor on one goroutine
// locked to its OS thread, with callbacks (CallSoon, Post), timers
// (CallLater, CallAt), descriptor watchers (AddReader, AddWriter), TCP
// servers and clients whose writes are batched into one writev per
// connection per turn and flow-controlled with high and low watermarks,
// groups of loops sharing a port with SO_REUSEPORT, RunInExecutor to hand
// blocking work to a pool and resume on the loop, and metrics (busy ratio,
// I/O wait, iteration time) for the monitor. It is asyncio's loop, and
// uvloop's design, for Go.
//
// When to use it: servers that hold very many mostly idle connections, or
// that want one thread to own a connection's state without locks. A
// connection costs a small struct and a descriptor, not a goroutine and
// its stack. When not to: for ordinary servers, Go's net package with a
// goroutine per connection is simpler and fast enough; and no callback may
// block: a blocking call stalls every connection of the loop (debug mode
// reports callbacks slower than 100ms).
//
// The reactor is written by hand on golang.org/x/sys/unix: Go's own
// netpoller is not exposed, and gnet, the peer, owns the whole server
// rather than offering a loop with timers, posts and executors. Linux only
// (epoll): elsewhere New returns ErrUnsupported.
package loop
