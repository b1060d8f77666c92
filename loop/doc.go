// Package loop is an event loop for Go: an epoll or kqueue reactor on one
// goroutine (parked in Go's netpoller when idle, or on an OS thread of its
// own with WithLockedThread), with callbacks (CallSoon, Post, Submit for a
// result), timers (CallLater, CallAt), descriptor watchers (AddReader,
// AddWriter), TCP
// servers and clients whose writes are batched into one writev per
// connection per turn and flow-controlled with high and low watermarks,
// groups of loops sharing a port (SO_REUSEPORT on Linux, one acceptor
// handing connections round elsewhere), RunInExecutor to hand
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
// reports callbacks and connection handlers slower than 100ms).
//
// Which goroutine may call what: Post, CallSoon, CallLater, CallAt, Submit,
// Stop, Metrics and Timer.Cancel may be called from any goroutine. The rest
// (Listen, Dial, AddReader and the Conn methods) are loop only: call them
// from the loop's callbacks and handlers, or before Run; from elsewhere,
// Post a function that calls them. Debug mode reports a loop-only call from
// another goroutine; outside it, finding the calling goroutine would cost
// more than the call.
//
// The reactor is written by hand on golang.org/x/sys/unix: Go's own
// netpoller is not exposed, and gnet, the peer, owns the whole server
// rather than offering a loop with timers, posts and executors.
//
// Platforms: epoll on Linux, where the tests run; kqueue on macOS and the
// BSDs (poller_kqueue.go, sys_bsd.go), which CI compiles and vets for
// darwin/arm64, freebsd, openbsd and netbsd but cannot run, as no such
// machine is at hand. On FreeBSD, NetBSD and DragonFly, x/sys offers no
// writev, so several staged buffers leave in one write each. On other
// systems (Windows) New returns ErrUnsupported.
package loop
