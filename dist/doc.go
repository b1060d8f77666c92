// Package dist spreads loom's queue and workers over many processes and
// machines: dist.Queue[T] is a queue that every process opening the same
// name on the same backend shares, and dist.Serve runs a handler on its
// messages in a loom Group of workers, with retries on a policy's backoff,
// dead letters, automatic extension of long work and a drain on shutdown.
//
// The engine is NATS JetStream (package loom/dist/jetstream): embedded in
// the process by default, so nothing has to be installed, and a real
// cluster by URL. loom adds no broker, protocol or wire format of its own:
// a queue is a JetStream stream, its messages are the encoded values
// (JSON by default), and other NATS clients can read them. Memory() is an
// in-process backend with the same semantics, for tests and one machine;
// both pass one conformance suite (loom/dist/disttest).
//
// Delivery is at least once. A message is acknowledged by the backend
// before Put returns; a consumer that dies with a message, or does not
// settle it within the queue's AckWait, has it delivered again, so a
// handler's effect must be idempotent (or recorded with the message's ID).
// A message that cannot be decoded, fails permanently, fails on every
// attempt, or crashes every worker that takes it ends in the queue's dead
// letters with the reason, never in a redelivery loop.
//
// When to use it: work that outgrows one machine (a crawl of millions of
// URLs, a backlog of thumbnails), work that must survive the process that
// queued it, or many processes feeding one pool of workers. When not to:
// within one process, loom.Queue and pool.Pool are a thousand times
// cheaper per item (a dist Put is a network round trip to a server that
// writes to disk) and need no server; use them until one machine is not
// enough.
package dist
