package dist

import (
	"context"
	"errors"
	"time"
)

// Errors of the dist package.
var (
	// ErrClosed is returned by the calls of a queue that was closed, and
	// by Get once Drain has begun.
	ErrClosed = errors.New("dist: queue closed")

	// ErrTooLarge is wrapped by Put's error for a value whose encoding is
	// over the queue's MaxValueBytes.
	ErrTooLarge = errors.New("dist: value too large")

	// ErrSettled is returned by a message's Done, Retry, Extend or Dead
	// after one of Done, Retry or Dead was called already.
	ErrSettled = errors.New("dist: message already settled")
)

// Backend is where queues live: Memory() in this process, or a NATS
// JetStream server or cluster (package loom/dist/jetstream). Open asks it
// for the store of one queue; its methods may be called from any goroutine.
//
// It is the interface a new backend implements; a user only passes a
// Backend to Open. The conformance suite in loom/dist/disttest checks an
// implementation.
type Backend interface {
	// OpenStore returns the store of the queue named name, creating it
	// with cfg if it does not exist, and updating it to cfg if it does.
	OpenStore(ctx context.Context, name string, cfg Config) (Store, error)
}

// Store is one queue's messages in a backend, as bytes.
type Store interface {
	// Put stores m and returns once the backend has it durably (for
	// JetStream: the server's acknowledgement).
	Put(ctx context.Context, m Outgoing) error
	// Get waits for a message that is due and takes it, or returns
	// context.Cause(ctx), or ErrClosed once the store is closed. The
	// message is redelivered, to this or another consumer, if it is not
	// settled within the queue's AckWait (Extend restarts that wait).
	Get(ctx context.Context) (Delivery, error)
	// Stats counts the queue's messages.
	Stats(ctx context.Context) (Stats, error)
	// DeadLetters returns up to max of the queue's dead letters, oldest
	// first.
	DeadLetters(ctx context.Context, max int) ([]DeadLetter, error)
	// Close releases what the store holds in this process; the queue's
	// messages stay in the backend.
	Close() error
}

// Outgoing is a message on its way into a store.
type Outgoing struct {
	Data     []byte
	Key      string        // de-duplication key; "" for none
	After    time.Duration // deliver no sooner than this from now
	Priority int           // 0 (lowest) to Levels-1
}

// Delivery is one delivery of a message, as a backend hands it over.
type Delivery interface {
	Data() []byte
	// ID names the message; it stays the same across redeliveries.
	ID() string
	// Attempt counts the deliveries of the message, this one included.
	Attempt() int
	// Ack removes the message, once the backend confirms it.
	Ack(ctx context.Context) error
	// Retry hands the message back, to be delivered again after the
	// delay (never sooner).
	Retry(ctx context.Context, after time.Duration) error
	// Extend restarts the AckWait of the message: still working.
	Extend(ctx context.Context) error
	// Dead moves the message to the queue's dead letters, with reason and
	// the attempt count, and out of the queue.
	Dead(ctx context.Context, reason string) error
}

// Stats counts a queue's messages. Ready and Delayed are waiting to be
// taken; InFlight have been taken and not settled (or were handed back
// with a delay, for backends that cannot tell those apart: see the
// backend's doc); Dead are in the dead letters.
type Stats struct {
	Ready, Delayed, InFlight, Dead int
}

// DeadLetter is a message that was given up on.
type DeadLetter struct {
	ID       string
	Data     []byte
	Reason   string
	Attempts int
	Time     time.Time
}

// Notifier is implemented by backends that can broadcast small notices to
// every process listening on a topic, at most once and not kept: the
// remote pool sends its cancellations this way. Memory and JetStream (core
// NATS subjects) implement it.
type Notifier interface {
	// Notify sends data to the topic's current listeners.
	Notify(ctx context.Context, topic string, data []byte) error
	// Listen calls f with each notice on topic, on a goroutine of the
	// backend's, until stop is called; f must not block for long.
	Listen(topic string, f func(data []byte)) (stop func(), err error)
}

// Deleter is implemented by backends that can delete a queue and its
// messages: the remote pool deletes its caller's result queue on Close.
type Deleter interface {
	DeleteQueue(ctx context.Context, name string) error
}

// Registry is implemented by backends that keep a small shared table of
// records by key, visible to every process (JetStream: a key-value
// bucket): remote workers write their heartbeats into it, and callers read
// who serves a pool.
type Registry interface {
	// Record writes value under key, replacing what was there.
	Record(ctx context.Context, key string, value []byte) error
	// Records returns the values of the keys that start with prefix.
	Records(ctx context.Context, prefix string) (map[string][]byte, error)
}
