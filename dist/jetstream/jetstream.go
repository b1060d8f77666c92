// Package jetstream is the dist backend on NATS JetStream: loom's
// distributed queues on a real, replicated, persistent engine, with no
// broker, protocol or wire format of loom's own. Embedded starts a NATS
// server inside the process (the default: nothing to install); Connect
// reaches a server or cluster by URL.
//
// How a queue maps onto JetStream:
//   - a work-queue stream LOOM_<name> on the subjects loom.<name>.p0 to
//     loom.<name>.p<levels-1>, one per priority level, file storage, the
//     queue's DedupWindow as the stream's duplicate window (Put's Key is the
//     Nats-Msg-Id), message schedules allowed;
//   - a durable pull consumer per level (loom-p<i>), explicit acks,
//     AckWait from the queue, no MaxDeliver: at MaxDeliver the server only
//     publishes an advisory and keeps the message, so loom counts the
//     deliveries itself and dead-letters (see dist.Config.MaxAttempts);
//   - Put with After publishes a one-shot schedule (Nats-Schedule: @at,
//     to the nanosecond) on loom.<name>.sched.<id> targeting the level's
//     subject: the server holds it and publishes it when due;
//   - Retry is a negative acknowledgement with a delay (a plain one would
//     be redelivered at once); Extend is "in progress"; Done waits for the
//     server's confirmation of the acknowledgement;
//   - dead letters go to a second stream, LOOM_<name>_DEAD on
//     loom.<name>.dead, with the reason and the attempt count in headers,
//     before the message is acknowledged out of the work stream.
//
// Get on a queue of one level takes, when several messages are there at
// once, up to Prefetch of them in one fetch and hands them out one by one
// (they count as in flight, and their AckWait runs, from the fetch); Gets
// that find none fetched ahead fetch at the same time, each for itself. On
// a queue of several levels it
// fetches one message at a time from the levels in dist.PickOrder's order,
// and when every level is empty it waits on one of them for up to 100ms at
// a time, so a message that arrives on a quiet queue of several levels may
// wait that long. Stats counts from the streams' and consumers'
// state: InFlight is the consumers' pending acknowledgements, which include
// messages handed back with a delay.
package jetstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"loom/dist"
)

// Backend is a dist.Backend on a NATS JetStream server or cluster.
type Backend struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	srv *server.Server // the embedded server, or nil

	kvOnce sync.Once
	kv     jetstream.KeyValue
	kvErr  error
}

// RecordsBucket is the key-value bucket of dist.Registry's records
// (remote workers' heartbeats); a record not rewritten for RecordsMaxAge
// is dropped.
const (
	RecordsBucket = "loom_records"
	RecordsMaxAge = 10 * time.Minute
)

func (b *Backend) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	b.kvOnce.Do(func() {
		b.kv, b.kvErr = b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: RecordsBucket, TTL: RecordsMaxAge, History: 1,
			MaxValueSize: dist.MaxRecordBytes})
	})
	return b.kv, b.kvErr
}

// Record implements dist.Registry with a key-value bucket.
func (b *Backend) Record(ctx context.Context, key string, value []byte) error {
	if len(value) > dist.MaxRecordBytes {
		return fmt.Errorf("%w: a record of %d bytes, over MaxRecordBytes %d", dist.ErrTooLarge, len(value), dist.MaxRecordBytes)
	}
	kv, err := b.bucket(ctx)
	if err != nil {
		return fmt.Errorf("records bucket: %w", err)
	}
	_, err = kv.Put(ctx, key, value)
	return err
}

// Records implements dist.Registry.
func (b *Backend) Records(ctx context.Context, prefix string) (map[string][]byte, error) {
	kv, err := b.bucket(ctx)
	if err != nil {
		return nil, fmt.Errorf("records bucket: %w", err)
	}
	keys, err := kv.ListKeysFiltered(ctx, prefix+">")
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for k := range keys.Keys() {
		if len(out) == dist.MaxRecords {
			_ = keys.Stop()
			break
		}
		if e, err := kv.Get(ctx, k); err == nil && len(e.Value()) <= dist.MaxRecordBytes {
			out[k] = e.Value()
		}
	}
	return out, nil
}

// Connect returns a backend on the NATS servers at urls (comma-separated,
// "nats://host:4222,nats://host2:4222"). opts are nats.go's connection
// options (credentials, TLS, reconnect policy).
func Connect(urls string, opts ...nats.Option) (*Backend, error) {
	nc, err := nats.Connect(urls, append([]nats.Option{nats.Name("loom dist"), nats.MaxReconnects(-1)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("jetstream.Connect %s: %w", urls, err)
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(AckTimeout))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream.Connect %s: %w", urls, err)
	}
	return &Backend{nc: nc, js: js}, nil
}

// EmbeddedOption configures Embedded.
type EmbeddedOption func(*server.Options) error

// Listen sets the address the embedded server listens on for other
// processes (default 127.0.0.1 on a free port; see Backend.URL).
func Listen(addr string) EmbeddedOption {
	return func(o *server.Options) error {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("listen address %q: %w", addr, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			return fmt.Errorf("listen address %q: bad port", addr)
		}
		o.Host, o.Port = host, p
		if p == 0 {
			o.Port = server.RANDOM_PORT
		}
		return nil
	}
}

// Cluster makes the embedded server one node of the JetStream cluster
// named name: it listens for the other nodes on listen ("127.0.0.1:6222")
// and connects to routes ("nats://127.0.0.1:6223", ...). Every node needs
// a ServerName of its own.
func Cluster(name, listen string, routes ...string) EmbeddedOption {
	return func(o *server.Options) error {
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			return fmt.Errorf("cluster address %q: %w", listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return fmt.Errorf("cluster address %q: bad port", listen)
		}
		o.Cluster = server.ClusterOpts{Name: name, Host: host, Port: p}
		for _, r := range routes {
			u, err := url.Parse(r)
			if err != nil {
				return fmt.Errorf("route %q: %w", r, err)
			}
			o.Routes = append(o.Routes, u)
		}
		return nil
	}
}

// ServerName names the embedded server (default a random name).
func ServerName(name string) EmbeddedOption {
	return func(o *server.Options) error { o.ServerName = name; return nil }
}

// Embedded starts a NATS server with JetStream inside this process,
// storing its streams in dir (which must exist or be creatable), and
// returns a backend connected to it. The server listens on loopback for
// other processes (Listen changes that); Close shuts it down. A server
// started again on the same dir finds every message it had acknowledged.
func Embedded(dir string, opts ...EmbeddedOption) (*Backend, error) {
	if dir == "" {
		return nil, errors.New("jetstream.Embedded: empty storage directory")
	}
	o := &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: dir,
		NoLog: true, NoSigs: true, MaxPayload: 8 << 20}
	for _, opt := range opts {
		if opt == nil {
			return nil, errors.New("jetstream.Embedded: nil option")
		}
		if err := opt(o); err != nil {
			return nil, fmt.Errorf("jetstream.Embedded: %w", err)
		}
	}
	srv, err := server.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("jetstream.Embedded: %w", err)
	}
	if os.Getenv("LOOM_NATS_LOG") == "1" {
		srv.ConfigureLogger()
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("jetstream.Embedded: the server did not become ready within 30s")
	}
	b, err := Connect(srv.ClientURL())
	if err != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, err
	}
	b.srv = srv
	return b, nil
}

// URL returns the URL other processes connect to: the embedded server's,
// or the server this backend is connected to.
func (b *Backend) URL() string {
	if b.srv != nil {
		return b.srv.ClientURL()
	}
	return b.nc.ConnectedUrl()
}

// Conn returns the backend's NATS connection.
func (b *Backend) Conn() *nats.Conn { return b.nc }

// Close closes the connection and, for an embedded server, shuts it down
// and waits for it.
func (b *Backend) Close() error {
	b.nc.Close()
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
	return nil
}

// Prefetch is how many messages a process fetches ahead from a queue of
// one level.
const Prefetch = 8

// Notify implements dist.Notifier on the core NATS subject
// loom.notice.<topic>, flushed before it returns.
func (b *Backend) Notify(ctx context.Context, topic string, data []byte) error {
	if len(data) > dist.MaxNoticeBytes {
		return fmt.Errorf("%w: a notice of %d bytes, over MaxNoticeBytes %d", dist.ErrTooLarge, len(data), dist.MaxNoticeBytes)
	}
	if err := b.nc.Publish("loom.notice."+topic, data); err != nil {
		return fmt.Errorf("notifying %s: %w", topic, err)
	}
	return b.nc.FlushWithContext(ctx)
}

// Listen implements dist.Notifier.
func (b *Backend) Listen(topic string, f func([]byte)) (func(), error) {
	if f == nil {
		return nil, errors.New("jetstream.Listen: nil listener")
	}
	sub, err := b.nc.Subscribe("loom.notice."+topic, func(m *nats.Msg) {
		if len(m.Data) <= dist.MaxNoticeBytes {
			f(m.Data)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("listening to %s: %w", topic, err)
	}
	if err := b.nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("listening to %s: %w", topic, err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// DeleteQueue implements dist.Deleter: it deletes the queue's streams
// (and so its consumers and messages).
func (b *Backend) DeleteQueue(ctx context.Context, name string) error {
	for _, st := range []string{"LOOM_" + name, "LOOM_" + name + "_DEAD"} {
		if err := b.js.DeleteStream(ctx, st); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("deleting stream %s: %w", st, err)
		}
	}
	return nil
}

// Header names of loom's dead letters.
const (
	HeaderReason   = "Loom-Reason"
	HeaderAttempts = "Loom-Attempts"
	HeaderID       = "Loom-Id"
)

// OpenStore implements dist.Backend: it creates or updates the queue's
// streams and consumers.
func (b *Backend) OpenStore(ctx context.Context, name string, cfg dist.Config) (dist.Store, error) {
	s := &store{b: b, name: name, cfg: cfg, stream: "LOOM_" + name, base: "loom." + name}
	if cfg.Existing {
		return s, s.find(ctx)
	}
	subjects := []string{s.base + ".sched.>"}
	for l := range cfg.Levels {
		subjects = append(subjects, s.level(l))
	}
	st, err := b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: s.stream, Subjects: subjects, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
		Duplicates: cfg.DedupWindow, MaxMsgSize: int32(cfg.MaxValueBytes + 4096), AllowMsgSchedules: true,
		Replicas: max(cfg.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("creating stream %s: %w", s.stream, err)
	}
	s.st = st
	if s.dead, err = b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: s.stream + "_DEAD", Subjects: []string{s.base + ".dead"}, Storage: jetstream.FileStorage,
		Duplicates: cfg.DedupWindow, Replicas: max(cfg.Replicas, 1),
	}); err != nil {
		return nil, fmt.Errorf("creating stream %s_DEAD: %w", s.stream, err)
	}
	for l := range cfg.Levels {
		c, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable: "loom-p" + strconv.Itoa(l), FilterSubject: s.level(l), AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: cfg.AckWait, MaxDeliver: -1, MaxAckPending: 1 << 16, Replicas: max(cfg.Replicas, 1),
		})
		if err != nil {
			return nil, fmt.Errorf("creating consumer loom-p%d on %s: %w", l, s.stream, err)
		}
		s.cons = append(s.cons, c)
	}
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	return s, nil
}

// find looks up the streams and consumers of an existing queue, with the
// settings they were created with.
func (s *store) find(ctx context.Context) error {
	gone := func(err error) error {
		if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("%w: %s", dist.ErrNoQueue, s.name)
		}
		return fmt.Errorf("finding queue %s: %w", s.name, err)
	}
	var err error
	if s.st, err = s.b.js.Stream(ctx, s.stream); err != nil {
		return gone(err)
	}
	if s.dead, err = s.b.js.Stream(ctx, s.stream+"_DEAD"); err != nil {
		return gone(err)
	}
	info := s.st.CachedInfo()
	s.cfg.Replicas, s.cfg.DedupWindow, s.cfg.Levels = info.Config.Replicas, info.Config.Duplicates, 0
	s.cfg.MaxValueBytes = int(info.Config.MaxMsgSize) - 4096
	for _, subj := range info.Config.Subjects {
		if strings.HasPrefix(subj, s.base+".p") {
			s.cfg.Levels++
		}
	}
	for l := range s.cfg.Levels {
		c, err := s.st.Consumer(ctx, "loom-p"+strconv.Itoa(l))
		if err != nil {
			return gone(err)
		}
		s.cfg.AckWait = c.CachedInfo().Config.AckWait
		s.cons = append(s.cons, c)
	}
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	return nil
}

type store struct {
	b      *Backend
	name   string
	cfg    dist.Config
	stream string
	base   string
	st     jetstream.Stream
	dead   jetstream.Stream
	cons   []jetstream.Consumer
	picks  atomic.Uint64
	ctx    context.Context // ends at Close
	cancel context.CancelCauseFunc

	mu     sync.Mutex  // guards ahead, waiter and sleepers
	ahead  []*delivery // a one-level queue's messages fetched ahead
	waiter bool        // a Get waits on the server for the next message
	// sleepers are the Gets that wait while another waits on the server,
	// oldest first; wakeLocked wakes one at a time, to take a message
	// fetched ahead or to wait on the server in its turn.
	sleepers []chan struct{}
}

func (s *store) level(l int) string { return s.base + ".p" + strconv.Itoa(l) }

// PublishTimeout bounds one attempt of a Put on a replicated queue: an
// acknowledgement lost in a failover (a node killed, a leader moving)
// would otherwise hold the Put until its context ends. Put then publishes
// again with the same message ID, which the stream's duplicate window
// turns into one message.
const PublishTimeout = 2 * time.Second

// Put implements dist.Store. On a replicated queue (Replicas > 1) every
// message carries a Nats-Msg-Id (its Key, or a random one) and an attempt
// whose acknowledgement does not come within PublishTimeout is made again
// with the same ID, so a failover neither loses nor doubles it. On a queue
// of one replica a message carries an ID only if it has a Key (an ID per
// message costs the server a third more per put), and Put waits for the
// acknowledgement until ctx ends.
func (s *store) Put(ctx context.Context, m dist.Outgoing) error {
	if err := context.Cause(s.ctx); err != nil {
		return err
	}
	id := m.Key
	if s.cfg.Replicas <= 1 {
		return s.publish(ctx, m, id)
	}
	if id == "" {
		id = nuid.Next()
	}
	for {
		actx, cancel := context.WithTimeout(ctx, PublishTimeout)
		err := s.publish(actx, m, id)
		cancel()
		if err == nil || ctx.Err() != nil || !transient(err) {
			return err
		}
		select { // failing over: again soon, with the same ID
		case <-ctx.Done():
			return fmt.Errorf("%w (last attempt: %v)", context.Cause(ctx), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// transient reports whether a publish error may pass: a timeout, no server
// answering yet, or JetStream saying it is briefly unavailable.
func transient(err error) bool {
	var api *jetstream.APIError
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.As(err, &api) && api.Code == 503
}

func (s *store) publish(ctx context.Context, m dist.Outgoing, id string) error {
	if m.After == 0 && len(m.Header) == 0 {
		var opts []jetstream.PublishOpt
		if id != "" {
			opts = append(opts, jetstream.WithMsgID(id))
		}
		if _, err := s.b.js.Publish(ctx, s.level(m.Priority), m.Data, opts...); err != nil {
			return s.publishErr(s.level(m.Priority), err)
		}
		return nil
	}
	msg := nats.NewMsg(s.level(m.Priority))
	msg.Data = m.Data
	for k, v := range m.Header {
		msg.Header.Set(k, v)
	}
	if m.After > 0 {
		// Delayed: a one-shot schedule that the server publishes when due
		// (with the message's headers).
		msg.Subject = s.base + ".sched." + nuid.Next()
		msg.Header.Set(jetstream.ScheduleHeader, "@at "+time.Now().Add(m.After).UTC().Format(time.RFC3339Nano))
		msg.Header.Set(jetstream.ScheduleTargetHeader, s.level(m.Priority))
	}
	if id != "" {
		msg.Header.Set(jetstream.MsgIDHeader, id)
	}
	if _, err := s.b.js.PublishMsg(ctx, msg); err != nil {
		return s.publishErr(msg.Subject, err)
	}
	return nil
}

// publishErr says what a failed publish means: on a queue opened with
// Existing and of one replica, no stream answering means it was deleted.
func (s *store) publishErr(subject string, err error) error {
	if s.cfg.Existing && s.cfg.Replicas <= 1 && errors.Is(err, jetstream.ErrNoStreamResponse) {
		return fmt.Errorf("%w: %s (publishing to %s: %v)", dist.ErrNoQueue, s.name, subject, err)
	}
	return fmt.Errorf("publishing to %s: %w", subject, err)
}

// Get implements dist.Store.
func (s *store) Get(ctx context.Context) (dist.Delivery, error) {
	for {
		if err := context.Cause(s.ctx); err != nil {
			return nil, err
		}
		if err := context.Cause(ctx); err != nil {
			return nil, err
		}
		if s.cfg.Levels == 1 {
			return s.next(ctx)
		}
		order := dist.PickOrder(s.picks.Add(1), s.cfg.Levels)
		if len(order) > 1 {
			for _, l := range order {
				if d, err := s.fetch(s.cons[l], 0); d != nil || err != nil {
					return d, err
				}
			}
		}
		wait := 250 * time.Millisecond
		if len(order) > 1 {
			wait = 100 * time.Millisecond
		}
		if dl, ok := ctx.Deadline(); ok {
			wait = max(min(wait, time.Until(dl)), time.Millisecond)
		}
		if d, err := s.fetch(s.cons[order[0]], wait); d != nil || err != nil {
			return d, err
		}
	}
}

// next takes the next message of a one-level queue: one fetched ahead,
// or up to Prefetch that are there at once (Gets that find none fetched
// ahead look at the same time, each for itself, as many consumers would).
// When there are none, one Get waits on the server for the next message,
// 250ms at a time, and the others wait for it: they ask the server
// nothing until it has had a message (then one of them takes its place)
// or leaves.
func (s *store) next(ctx context.Context) (dist.Delivery, error) {
	look := true // whether to ask for what is there before waiting on the server
	for {
		if d := s.takeAhead(); d != nil {
			return d, nil
		}
		if err := context.Cause(s.ctx); err != nil {
			return nil, err
		}
		if err := context.Cause(ctx); err != nil {
			return nil, err
		}
		if look && !s.waiting() { // while a Get waits on the server, nothing is there to take
			look = false // asked; the wait below need not ask again
			batch, err := s.cons[0].FetchNoWait(Prefetch)
			if err != nil {
				return nil, err
			}
			if d, err := s.take(batch); err != nil {
				return nil, err
			} else if d != nil {
				return d, nil
			}
		}
		s.mu.Lock()
		if len(s.ahead) > 0 {
			s.mu.Unlock()
			continue
		}
		if s.waiter {
			wake := make(chan struct{})
			s.sleepers = append(s.sleepers, wake)
			s.mu.Unlock()
			select {
			case <-wake:
			case <-ctx.Done():
				s.leave(wake)
			case <-s.ctx.Done():
				s.leave(wake)
			}
			continue
		}
		s.waiter = true
		s.mu.Unlock()
		d, err := s.wait(ctx, look)
		look = true
		s.mu.Lock()
		s.waiter = false
		if d != nil || err != nil || ctx.Err() != nil || s.ctx.Err() != nil {
			s.wakeLocked() // a message came, or this Get leaves: another waits in its turn
		}
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if d != nil {
			return d, nil
		}
	}
}

// wait takes what is there, up to Prefetch, if look is set, and if there
// is nothing waits up to 250ms (or until ctx's deadline) for the next
// message.
func (s *store) wait(ctx context.Context, look bool) (*delivery, error) {
	if look {
		batch, err := s.cons[0].FetchNoWait(Prefetch)
		if err != nil {
			return nil, err
		}
		if d, err := s.take(batch); d != nil || err != nil {
			return d, err
		}
	}
	wait := 250 * time.Millisecond
	if dl, ok := ctx.Deadline(); ok {
		wait = max(min(wait, time.Until(dl)), time.Millisecond)
	}
	batch, err := s.cons[0].Fetch(1, jetstream.FetchMaxWait(wait))
	if err != nil {
		return nil, err
	}
	return s.take(batch)
}

// waiting reports whether a Get waits on the server for the next message.
func (s *store) waiting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiter
}

// wakeLocked wakes the oldest sleeping Get, if any; the caller holds mu.
func (s *store) wakeLocked() {
	if len(s.sleepers) > 0 {
		close(s.sleepers[0])
		s.sleepers[0] = nil
		s.sleepers = s.sleepers[1:]
	}
}

// leave takes a Get that stops sleeping (its context ended) off the
// sleepers; if it was woken meanwhile, it passes the wake-up on.
func (s *store) leave(wake chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, w := range s.sleepers {
		if w == wake {
			s.sleepers = append(s.sleepers[:i], s.sleepers[i+1:]...)
			return
		}
	}
	s.wakeLocked()
}

// takeAhead returns a message fetched ahead, or nil.
func (s *store) takeAhead() *delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ahead) == 0 {
		return nil
	}
	d := s.ahead[0]
	s.ahead[0] = nil
	s.ahead = s.ahead[1:]
	return d
}

// take returns the first message of batch, and puts the others with
// those fetched ahead (waking the Gets that wait).
func (s *store) take(batch jetstream.MessageBatch) (*delivery, error) {
	var first *delivery
	for m := range batch.Messages() {
		md, err := m.Metadata()
		if err != nil {
			return nil, fmt.Errorf("reading a message's metadata: %w", err) // it comes again after AckWait
		}
		d := &delivery{s: s, m: m, md: md}
		if first == nil {
			first = d
			continue
		}
		s.mu.Lock()
		s.ahead = append(s.ahead, d)
		s.wakeLocked() // one sleeper for each message fetched ahead
		s.mu.Unlock()
	}
	if err := batch.Error(); first == nil && err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
		return nil, fmt.Errorf("fetching from %s: %w", s.stream, err)
	}
	return first, nil
}

// fetch takes one message from c, waiting up to wait (0: not at all); a
// nil delivery and error mean none came.
func (s *store) fetch(c jetstream.Consumer, wait time.Duration) (dist.Delivery, error) {
	var batch jetstream.MessageBatch
	var err error
	if wait == 0 {
		batch, err = c.FetchNoWait(1)
	} else {
		batch, err = c.Fetch(1, jetstream.FetchMaxWait(wait))
	}
	if err != nil {
		return nil, fmt.Errorf("fetching from %s: %w", s.stream, err)
	}
	if m, ok := <-batch.Messages(); ok { // a batch of one
		md, err := m.Metadata()
		if err != nil {
			return nil, fmt.Errorf("reading a message's metadata: %w", err)
		}
		return &delivery{s: s, m: m, md: md}, nil
	}
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
		return nil, fmt.Errorf("fetching from %s: %w", s.stream, err)
	}
	return nil, nil
}

// Stats implements dist.Store.
func (s *store) Stats(ctx context.Context) (dist.Stats, error) {
	info, err := s.st.Info(ctx, jetstream.WithSubjectFilter(s.base+".sched.>"))
	if err != nil {
		return dist.Stats{}, fmt.Errorf("stream %s: %w", s.stream, err)
	}
	var st dist.Stats
	for _, n := range info.State.Subjects {
		st.Delayed += int(n)
	}
	for _, c := range s.cons {
		ci, err := c.Info(ctx)
		if err != nil {
			return dist.Stats{}, fmt.Errorf("consumer of %s: %w", s.stream, err)
		}
		st.InFlight += ci.NumAckPending
	}
	st.Ready = max(int(info.State.Msgs)-st.Delayed-st.InFlight, 0)
	di, err := s.dead.Info(ctx)
	if err != nil {
		return dist.Stats{}, fmt.Errorf("stream %s_DEAD: %w", s.stream, err)
	}
	st.Dead = int(di.State.Msgs)
	return st, nil
}

// DeadLetters implements dist.Store.
func (s *store) DeadLetters(ctx context.Context, max int) ([]dist.DeadLetter, error) {
	info, err := s.dead.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s_DEAD: %w", s.stream, err)
	}
	var out []dist.DeadLetter
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && len(out) < max && info.State.Msgs > 0; seq++ {
		raw, err := s.dead.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("reading dead letter %d: %w", seq, err)
		}
		attempts, _ := strconv.Atoi(raw.Header.Get(HeaderAttempts))
		dl := dist.DeadLetter{ID: raw.Header.Get(HeaderID), Data: raw.Data, Reason: raw.Header.Get(HeaderReason),
			Attempts: attempts, Time: raw.Time}
		for k, v := range raw.Header {
			if k != HeaderID && k != HeaderReason && k != HeaderAttempts && !strings.HasPrefix(k, "Nats-") && len(v) > 0 {
				if dl.Header == nil {
					dl.Header = map[string]string{}
				}
				dl.Header[k] = v[0]
			}
		}
		out = append(out, dl)
	}
	return out, nil
}

// Config implements dist.Store.
func (s *store) Config() dist.Config { return s.cfg }

// Close implements dist.Store.
func (s *store) Close() error {
	s.cancel(dist.ErrClosed)
	return nil
}

// delivery is one delivery of a JetStream message.
type delivery struct {
	s  *store
	m  jetstream.Msg
	md *jetstream.MsgMetadata
}

func (d *delivery) Data() []byte { return d.m.Data() }
func (d *delivery) ID() string   { return strconv.FormatUint(d.md.Sequence.Stream, 10) }
func (d *delivery) Attempt() int { return int(d.md.NumDelivered) }

func (d *delivery) Header(key string) string {
	if strings.HasPrefix(key, "Nats-") {
		return "" // the server's own, not the message's
	}
	return d.m.Headers().Get(key)
}

// AckTimeout bounds the wait for the server's confirmation of an
// acknowledgement: a server restarted since the delivery may never
// confirm it (the message then comes again after its AckWait).
const AckTimeout = 5 * time.Second

func (d *delivery) Ack(ctx context.Context) error {
	if _, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, AckTimeout)
		defer cancel()
	}
	// Without a deadline, nats.go bounds the wait by its default timeout,
	// which the backend sets to AckTimeout.
	return d.m.DoubleAck(ctx)
}

func (d *delivery) Retry(ctx context.Context, after time.Duration) error {
	return d.m.NakWithDelay(after)
}

func (d *delivery) Extend(ctx context.Context) error { return d.m.InProgress() }

func (d *delivery) Dead(ctx context.Context, reason string) error {
	msg := nats.NewMsg(d.s.base + ".dead")
	msg.Data = d.m.Data()
	for k, v := range d.m.Headers() {
		if !strings.HasPrefix(k, "Nats-") && len(v) > 0 {
			msg.Header.Set(k, v[0])
		}
	}
	msg.Header.Set(HeaderReason, reason)
	msg.Header.Set(HeaderAttempts, strconv.Itoa(d.Attempt()))
	msg.Header.Set(HeaderID, d.ID())
	// The same message dead-lettered twice (its ack below lost) is one
	// dead letter.
	msg.Header.Set(jetstream.MsgIDHeader, "dead-"+d.ID())
	if _, err := d.s.b.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publishing the dead letter: %w", err)
	}
	return d.Ack(ctx)
}
