package dist

import (
	"fmt"
	"strings"
	"time"

	"loom"
)

// Config is a queue's settings, as Open's options set them. A backend gets
// it complete, defaults filled in.
type Config struct {
	// Levels is how many priority levels the queue has, 1 to MaxLevels
	// (default 1). Get takes from the highest level first, but gives each
	// lower level a turn now and then (a level gets half the turns of the
	// one above it), so no level starves.
	Levels int
	// MaxAttempts is how many deliveries a message gets before it goes to
	// the dead letters (default 5): Serve dead-letters a message whose
	// handler failed that often, and Get one delivered more often than
	// that without an outcome, as when the handler crashes the worker.
	MaxAttempts int
	// AckWait is how long a taken message may stay unsettled before it is
	// delivered again (default 30s); Extend restarts it, and Serve
	// extends every third of it while a handler runs.
	AckWait time.Duration
	// DedupWindow is how long a Put's Key is remembered: a second Put with
	// the same key within it is dropped (default 2 minutes).
	DedupWindow time.Duration
	// MaxValueBytes bounds a value's encoding (default 1 MiB, JetStream's
	// default largest message); Put refuses a larger one with ErrTooLarge.
	MaxValueBytes int
	// Replicas is how many servers of a cluster keep each message
	// (default 1; 3 survives the loss of one server). Backends without
	// replication ignore it.
	Replicas int
	// Existing makes Open find the queue rather than create it: Open
	// fails with ErrNoQueue if it does not exist, and leaves its stored
	// settings as they are. Set by the Existing option.
	Existing bool
}

// MaxLevels is the most priority levels a queue may have.
const MaxLevels = 4

// Defaults of Config.
const (
	DefaultMaxAttempts   = 5
	DefaultAckWait       = 30 * time.Second
	DefaultDedupWindow   = 2 * time.Minute
	DefaultMaxValueBytes = 1 << 20
)

// Option configures a queue at Open.
type Option func(*options) error

type options struct {
	cfg   Config
	codec Codec
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{loom.ErrInvalidArgument}, args...)...)
}

// Levels sets the number of priority levels (1 to MaxLevels).
func Levels(n int) Option {
	return func(o *options) error {
		if n < 1 || n > MaxLevels {
			return invalid("%d levels; want 1 to %d", n, MaxLevels)
		}
		o.cfg.Levels = n
		return nil
	}
}

// MaxAttempts sets how many deliveries a message gets before it is
// dead-lettered (at least 1).
func MaxAttempts(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return invalid("%d attempts; want at least 1", n)
		}
		o.cfg.MaxAttempts = n
		return nil
	}
}

// AckWait sets how long a taken message may stay unsettled before it is
// delivered again (at least a millisecond).
func AckWait(d time.Duration) Option {
	return func(o *options) error {
		if d < time.Millisecond {
			return invalid("ack wait %v; want at least 1ms", d)
		}
		o.cfg.AckWait = d
		return nil
	}
}

// DedupWindow sets how long a Put's key is remembered (more than 0).
func DedupWindow(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return invalid("dedup window %v; want more than 0", d)
		}
		o.cfg.DedupWindow = d
		return nil
	}
}

// MaxValueBytes sets the largest encoded value Put accepts (at least 1).
func MaxValueBytes(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return invalid("max value bytes %d; want at least 1", n)
		}
		o.cfg.MaxValueBytes = n
		return nil
	}
}

// Replicas sets how many servers of a cluster keep each message (1 to 5).
func Replicas(n int) Option {
	return func(o *options) error {
		if n < 1 || n > 5 {
			return invalid("%d replicas; want 1 to 5", n)
		}
		o.cfg.Replicas = n
		return nil
	}
}

// WithCodec sets how values are encoded (default JSON).
func WithCodec(c Codec) Option {
	return func(o *options) error {
		if c == nil {
			return invalid("nil codec")
		}
		o.codec = c
		return nil
	}
}

func buildOptions(opts []Option) (options, error) {
	o := options{cfg: Config{Levels: 1, MaxAttempts: DefaultMaxAttempts, AckWait: DefaultAckWait,
		DedupWindow: DefaultDedupWindow, MaxValueBytes: DefaultMaxValueBytes, Replicas: 1}, codec: JSON{}}
	for _, opt := range opts {
		if opt == nil {
			return o, invalid("nil option")
		}
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// Existing makes Open open the queue only if it exists (ErrNoQueue
// otherwise), without changing its stored settings; and a Put to it once
// it has been deleted fails with ErrNoQueue, where the backend can tell.
// The remote pool's workers open a caller's result queue this way, so
// that a caller that closed its pool does not get its queue back.
func Existing() Option {
	return func(o *options) error {
		o.cfg.Existing = true
		return nil
	}
}

// PutOption configures one Put.
type PutOption func(*Outgoing) error

// Key sets the message's de-duplication key: a Put with a key already put
// within the queue's DedupWindow is dropped, and Put returns nil.
func Key(k string) PutOption {
	return func(m *Outgoing) error {
		if k == "" {
			return invalid("empty key")
		}
		m.Key = k
		return nil
	}
}

// After delays the message: it is delivered no sooner than d from now.
func After(d time.Duration) PutOption {
	return func(m *Outgoing) error {
		if d < 0 {
			return invalid("negative delay %v", d)
		}
		m.After = d
		return nil
	}
}

// Priority sets the message's level, 0 (the lowest, the default) to the
// queue's Levels-1.
func Priority(p int) PutOption {
	return func(m *Outgoing) error {
		if p < 0 {
			return invalid("negative priority %d", p)
		}
		m.Priority = p
		return nil
	}
}

// MaxHeaderBytes bounds the headers of one message: the bytes of every
// key and value together. Headers are for small metadata (a trace
// context, where the message came from), not for data.
const MaxHeaderBytes = 4096

// Header sets a header of the message: metadata that travels beside the
// value, which the consumer reads with Msg.Header (and the JetStream
// backend stores as a NATS header, visible to any NATS tool). A key is 1
// to 64 letters, digits, '-', '_' and '.', and must not start with
// "Nats-", which the server reserves; a value has no control characters.
// The headers of a message, keys and values together, are at most
// MaxHeaderBytes. The W3C trace context of ctx (see WithTraceparent) is
// set as the "traceparent" header unless this sets one.
func Header(key, value string) PutOption {
	return func(m *Outgoing) error {
		if !validHeaderKey(key) {
			return invalid("header key %q; want 1 to 64 letters, digits, '-', '_' and '.', not starting with \"Nats-\"", key)
		}
		for i := 0; i < len(value); i++ {
			if c := value[i]; c < ' ' || c == 0x7f {
				return invalid("header %q: control character %#x in the value", key, c)
			}
		}
		if m.Header == nil {
			m.Header = map[string]string{}
		}
		m.Header[key] = value
		n := 0
		for k, v := range m.Header {
			n += len(k) + len(v)
		}
		if n > MaxHeaderBytes {
			return fmt.Errorf("%w: the message's headers take %d bytes, over MaxHeaderBytes %d", ErrTooLarge, n, MaxHeaderBytes)
		}
		return nil
	}
}

func validHeaderKey(k string) bool {
	if len(k) == 0 || len(k) > 64 || len(k) >= 5 && strings.EqualFold(k[:5], "nats-") {
		return false
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// validName reports whether name can name a queue: 1 to 64 letters,
// digits, '-' and '_', so that it is one subject token and a stream name
// in any backend.
func validName(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// PickOrder returns the order in which the n-th Get looks at the levels of
// a queue with levels levels: usually highest first, but each level leads
// in a share of the turns (level i in 2^i of every 2^levels-1), so that no
// level starves. Backends use it so that all order alike.
func PickOrder(n uint64, levels int) []int {
	order := make([]int, 0, levels)
	cycle := uint64(1)<<levels - 1
	k := n % cycle
	first := levels - 1
	for l := levels - 1; l >= 0; l-- {
		w := uint64(1) << l
		if k < w {
			first = l
			break
		}
		k -= w
	}
	order = append(order, first)
	for l := levels - 1; l >= 0; l-- {
		if l != first {
			order = append(order, l)
		}
	}
	return order
}
