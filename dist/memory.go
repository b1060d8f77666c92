package dist

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Memory returns a backend that keeps its queues in this process, with the
// semantics of the JetStream backend: acknowledged puts, AckWait and
// redelivery, delays, priorities, de-duplication, dead letters. It is for
// tests and for one machine; its queues live as long as the backend value,
// and every Open of a name on it shares one queue. It persists nothing: a
// process that dies loses them.
func Memory() Backend { return &memory{queues: map[string]*memQueue{}} }

type memory struct {
	mu        sync.Mutex
	queues    map[string]*memQueue
	listeners map[string]map[*func([]byte)]bool
	records   map[string][]byte
}

// Record implements Registry.
func (b *memory) Record(ctx context.Context, key string, value []byte) error {
	if len(value) > MaxRecordBytes {
		return fmt.Errorf("%w: a record of %d bytes, over MaxRecordBytes %d", ErrTooLarge, len(value), MaxRecordBytes)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.records == nil {
		b.records = map[string][]byte{}
	}
	b.records[key] = append([]byte(nil), value...)
	return context.Cause(ctx)
}

// Records implements Registry.
func (b *memory) Records(ctx context.Context, prefix string) (map[string][]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string][]byte{}
	for k, v := range b.records {
		if strings.HasPrefix(k, prefix) && len(out) < MaxRecords {
			out[k] = append([]byte(nil), v...)
		}
	}
	return out, context.Cause(ctx)
}

// Notify implements Notifier.
func (b *memory) Notify(ctx context.Context, topic string, data []byte) error {
	if len(data) > MaxNoticeBytes {
		return fmt.Errorf("%w: a notice of %d bytes, over MaxNoticeBytes %d", ErrTooLarge, len(data), MaxNoticeBytes)
	}
	b.mu.Lock()
	var fs []func([]byte)
	for f := range b.listeners[topic] {
		fs = append(fs, *f)
	}
	b.mu.Unlock()
	for _, f := range fs {
		go f(append([]byte(nil), data...))
	}
	return context.Cause(ctx)
}

// Listen implements Notifier.
func (b *memory) Listen(topic string, f func([]byte)) (func(), error) {
	if f == nil {
		return nil, invalid("nil listener")
	}
	key := &f
	b.mu.Lock()
	if b.listeners == nil {
		b.listeners = map[string]map[*func([]byte)]bool{}
	}
	if b.listeners[topic] == nil {
		b.listeners[topic] = map[*func([]byte)]bool{}
	}
	b.listeners[topic][key] = true
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		delete(b.listeners[topic], key)
		b.mu.Unlock()
	}, nil
}

// DeleteQueue implements Deleter.
func (b *memory) DeleteQueue(ctx context.Context, name string) error {
	b.mu.Lock()
	delete(b.queues, name)
	b.mu.Unlock()
	return nil
}

// OpenStore implements Backend.
func (b *memory) OpenStore(ctx context.Context, name string, cfg Config) (Store, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	q := b.queues[name]
	if q == nil && cfg.Existing {
		return nil, ErrNoQueue
	}
	if q == nil {
		q = &memQueue{ready: make([][]*memMsg, MaxLevels), inFlight: map[uint64]*memMsg{},
			keys: map[string]time.Time{}, changed: make(chan struct{})}
		b.queues[name] = q
	}
	if !cfg.Existing {
		q.mu.Lock()
		q.cfg = cfg
		q.mu.Unlock()
	}
	return &memStore{b: b, name: name, q: q, found: cfg.Existing, closed: make(chan struct{})}, nil
}

// memQueue is one queue of the memory backend.
type memQueue struct {
	mu       sync.Mutex
	cfg      Config
	ready    [][]*memMsg // per level, oldest first
	delayed  int
	inFlight map[uint64]*memMsg
	dead     []DeadLetter
	keys     map[string]time.Time // de-duplication keys and when they were put
	seq      uint64
	picks    uint64
	changed  chan struct{} // closed, and replaced, when a message becomes ready
}

// memMsg is a message of the memory backend.
type memMsg struct {
	id       uint64
	data     []byte
	header   map[string]string
	level    int
	attempts int
	gen      uint64      // which delivery holds it now
	tok      uint64      // which arming of the AckWait timer counts
	timer    *time.Timer // AckWait while in flight, the delay while delayed
}

// signal wakes the Gets that wait; the caller holds the lock.
func (q *memQueue) signal() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// readyLocked makes m ready; the caller holds the lock.
func (q *memQueue) readyLocked(m *memMsg) {
	q.ready[m.level] = append(q.ready[m.level], m)
	q.signal()
}

// delayLocked makes m ready after d; the caller holds the lock.
func (q *memQueue) delayLocked(m *memMsg, d time.Duration) {
	if d <= 0 {
		q.readyLocked(m)
		return
	}
	q.delayed++
	m.timer = time.AfterFunc(d, func() {
		q.mu.Lock()
		q.delayed--
		q.readyLocked(m)
		q.mu.Unlock()
	})
}

type memStore struct {
	b      *memory
	name   string
	q      *memQueue
	found  bool // opened with Config.Existing: Put checks the queue is still there
	once   sync.Once
	closed chan struct{}
}

// Config implements Store.
func (s *memStore) Config() Config {
	s.q.mu.Lock()
	defer s.q.mu.Unlock()
	c := s.q.cfg
	c.Existing = s.found
	return c
}

// Put implements Store.
func (s *memStore) Put(ctx context.Context, m Outgoing) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if s.found {
		s.b.mu.Lock()
		gone := s.b.queues[s.name] != s.q
		s.b.mu.Unlock()
		if gone {
			return ErrNoQueue
		}
	}
	q := s.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if m.Key != "" {
		now := time.Now()
		if at, ok := q.keys[m.Key]; ok && now.Sub(at) < q.cfg.DedupWindow {
			return nil
		}
		q.keys[m.Key] = now
		if len(q.keys) > 1024 && len(q.keys)%1024 == 0 {
			for k, at := range q.keys {
				if now.Sub(at) >= q.cfg.DedupWindow {
					delete(q.keys, k)
				}
			}
		}
	}
	q.seq++
	msg := &memMsg{id: q.seq, data: append([]byte(nil), m.Data...), header: maps.Clone(m.Header), level: m.Priority}
	q.delayLocked(msg, m.After)
	return nil
}

func (s *memStore) check(ctx context.Context) error {
	select {
	case <-s.closed:
		return ErrClosed
	default:
	}
	return context.Cause(ctx)
}

// Get implements Store.
func (s *memStore) Get(ctx context.Context) (Delivery, error) {
	q := s.q
	for {
		if err := s.check(ctx); err != nil {
			return nil, err
		}
		q.mu.Lock()
		q.picks++
		for _, l := range PickOrder(q.picks, q.cfg.Levels) {
			if len(q.ready[l]) == 0 {
				continue
			}
			m := q.ready[l][0]
			q.ready[l][0] = nil
			q.ready[l] = q.ready[l][1:]
			m.attempts++
			m.gen++
			gen := m.gen
			q.inFlight[m.id] = m
			q.armLocked(m)
			q.mu.Unlock()
			return &memDelivery{q: q, m: m, gen: gen, attempt: m.attempts}, nil
		}
		changed := q.changed
		q.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-s.closed:
			return nil, ErrClosed
		}
	}
}

// armLocked starts m's AckWait, replacing any earlier one; the caller
// holds the lock.
func (q *memQueue) armLocked(m *memMsg) {
	if m.timer != nil {
		m.timer.Stop()
	}
	m.tok++
	tok := m.tok
	m.timer = time.AfterFunc(q.cfg.AckWait, func() { q.expire(m, tok) })
}

// expire delivers m again once its AckWait has passed, unless it was
// settled, extended or delivered again meanwhile.
func (q *memQueue) expire(m *memMsg, tok uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if m.tok != tok || q.inFlight[m.id] != m {
		return
	}
	delete(q.inFlight, m.id)
	q.readyLocked(m)
}

// Stats implements Store.
func (s *memStore) Stats(ctx context.Context) (Stats, error) {
	if err := s.check(ctx); err != nil {
		return Stats{}, err
	}
	q := s.q
	q.mu.Lock()
	defer q.mu.Unlock()
	st := Stats{Delayed: q.delayed, InFlight: len(q.inFlight), Dead: len(q.dead)}
	for _, l := range q.ready {
		st.Ready += len(l)
	}
	return st, nil
}

// DeadLetters implements Store.
func (s *memStore) DeadLetters(ctx context.Context, max int) ([]DeadLetter, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	s.q.mu.Lock()
	defer s.q.mu.Unlock()
	return append([]DeadLetter(nil), s.q.dead[:min(max, len(s.q.dead))]...), nil
}

// Close implements Store.
func (s *memStore) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

// memDelivery is one delivery of a memory message.
type memDelivery struct {
	q       *memQueue
	m       *memMsg
	gen     uint64
	attempt int
}

func (d *memDelivery) Data() []byte { return d.m.data }
func (d *memDelivery) ID() string   { return strconv.FormatUint(d.m.id, 10) }
func (d *memDelivery) Attempt() int { return d.attempt }

func (d *memDelivery) Header(key string) string { return d.m.header[key] }

// take ends the delivery if it still holds the message; the caller holds
// the lock.
func (d *memDelivery) take() error {
	if d.m.gen != d.gen || d.q.inFlight[d.m.id] != d.m {
		return fmt.Errorf("dist: message %d: its AckWait passed and it was delivered again", d.m.id)
	}
	d.m.timer.Stop()
	d.m.tok++ // a timer that fired meanwhile finds itself stale
	delete(d.q.inFlight, d.m.id)
	return nil
}

func (d *memDelivery) Ack(ctx context.Context) error {
	d.q.mu.Lock()
	defer d.q.mu.Unlock()
	return d.take()
}

func (d *memDelivery) Retry(ctx context.Context, after time.Duration) error {
	d.q.mu.Lock()
	defer d.q.mu.Unlock()
	if err := d.take(); err != nil {
		return err
	}
	d.q.delayLocked(d.m, after)
	return nil
}

func (d *memDelivery) Extend(ctx context.Context) error {
	d.q.mu.Lock()
	defer d.q.mu.Unlock()
	if d.m.gen != d.gen || d.q.inFlight[d.m.id] != d.m {
		return fmt.Errorf("dist: message %d: its AckWait passed and it was delivered again", d.m.id)
	}
	d.q.armLocked(d.m)
	return nil
}

func (d *memDelivery) Dead(ctx context.Context, reason string) error {
	d.q.mu.Lock()
	defer d.q.mu.Unlock()
	if err := d.take(); err != nil {
		return err
	}
	d.q.dead = append(d.q.dead, DeadLetter{ID: d.ID(), Data: d.m.data, Reason: reason, Attempts: d.attempt, Time: time.Now(),
		Header: maps.Clone(d.m.header)})
	return nil
}
