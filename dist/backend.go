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

	// ErrNoQueue is returned by Open with the Existing option for a queue
	// that does not exist, and by Put on such a queue once it is deleted.
	ErrNoQueue = errors.New("dist: no such queue")

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
	// with cfg if it does not exist, and updating it to cfg if it does;
	// with cfg.Existing, it neither creates nor updates, and returns
	// ErrNoQueue if the queue does not exist.
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
	// Config returns the queue's settings: as stored in the backend, for a
	// store opened with Config.Existing.
	Config() Config
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
	// Header is the message's metadata (see the Header option), nil for
	// none; the store keeps it with the message.
	Header map[string]string
}

// Delivery is one delivery of a message, as a backend hands it over.
type Delivery interface {
	Data() []byte
	// ID names the message; it stays the same across redeliveries.
	ID() string
	// Attempt counts the deliveries of the message, this one included.
	Attempt() int
	// Header returns the value of the message's header key, "" if it has
	// none.
	Header(key string) string
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
	Header   map[string]string // the message's headers, nil if it had none
}

// Limits of notices and records: a backend refuses to send or keep a
// larger one, and drops a larger one that comes in.
const (
	// MaxNoticeBytes bounds one notice of a Notifier.
	MaxNoticeBytes = 1024
	// MaxRecordBytes bounds one value of a Registry.
	MaxRecordBytes = 16 << 10
	// MaxRecords bounds how many values one Records call returns.
	MaxRecords = 4096
)

// Notifier is implemented by backends that can broadcast small notices to
// every process listening on a topic, at most once and not kept: the
// remote pool sends its cancellations this way. Memory and JetStream (core
// NATS subjects) implement it.
type Notifier interface {
	// Notify sends data (at most MaxNoticeBytes) to the topic's current
	// listeners.
	Notify(ctx context.Context, topic string, data []byte) error
	// Listen calls f with each notice on topic, on a goroutine of the
	// backend's, until stop is called; f must not block for long. A
	// notice over MaxNoticeBytes is dropped.
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
	// Record writes value (at most MaxRecordBytes) under key, replacing
	// what was there.
	Record(ctx context.Context, key string, value []byte) error
	// Records returns the values of the keys that start with prefix, at
	// most MaxRecords of them (skipping any over MaxRecordBytes).
	Records(ctx context.Context, prefix string) (map[string][]byte, error)
}
