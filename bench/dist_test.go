package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"loom"
	"loom/dist"
	"loom/dist/jetstream"
	"loom/pool"
)

// The distributed queue side by side with raw nats.go doing the same work
// on the same kind of stream (work-queue, file storage, the same duplicate
// window, explicit acks confirmed by the server, the same fetch pattern),
// with asynq on a real redis-server with appendonly yes (started and
// stopped here), and with the in-memory loom.Queue as the ceiling.

// job is what every implementation carries: a sequence number and the
// time it was put, encoded as JSON.
type job struct {
	N    int   `json:"n"`
	Sent int64 `json:"sent"`
}

// distEnv is one embedded JetStream server for a benchmark.
type distEnv struct {
	b  *jetstream.Backend
	js natsjs.JetStream
}

func newDistEnv(b *testing.B) *distEnv {
	be, err := jetstream.Embedded(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	js, err := natsjs.New(be.Conn())
	if err != nil {
		b.Fatal(err)
	}
	return &distEnv{b: be, js: js}
}

var distSeq atomic.Int64

// rawQueue is a stream and consumer as loom makes them, for raw nats.go.
func (e *distEnv) rawQueue(b *testing.B) (natsjs.Consumer, string) {
	name := fmt.Sprintf("RAW%d", distSeq.Add(1))
	subject := "raw." + name
	ctx := context.Background()
	st, err := e.js.CreateOrUpdateStream(ctx, natsjs.StreamConfig{Name: name, Subjects: []string{subject}, Retention: natsjs.WorkQueuePolicy,
		Storage: natsjs.FileStorage, Duplicates: dist.DefaultDedupWindow, AllowMsgSchedules: true})
	if err != nil {
		b.Fatal(err)
	}
	c, err := st.CreateOrUpdateConsumer(ctx, natsjs.ConsumerConfig{Durable: "raw", FilterSubject: subject, AckPolicy: natsjs.AckExplicitPolicy,
		AckWait: dist.DefaultAckWait, MaxDeliver: -1, MaxAckPending: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	return c, subject
}

func (e *distEnv) loomQueue(b *testing.B) *dist.Queue[job] {
	q, err := dist.Open[job](context.Background(), e.b, fmt.Sprintf("bench%d", distSeq.Add(1)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { q.Close() })
	return q
}

// rawTake is raw nats.go's Get: up to 8 messages that are there at once,
// else wait for one, as loom's backend does.
func rawTake(ctx context.Context, c natsjs.Consumer, handle func(natsjs.Msg)) error {
	batch, err := c.FetchNoWait(jetstream.Prefetch)
	if err != nil {
		return err
	}
	n := 0
	for m := range batch.Messages() {
		handle(m)
		n++
	}
	if n > 0 {
		return nil
	}
	if batch, err = c.Fetch(1, natsjs.FetchMaxWait(100*time.Millisecond)); err != nil {
		return err
	}
	for m := range batch.Messages() {
		handle(m)
	}
	return ctx.Err()
}

// redis runs a redis-server with appendonly yes for the benchmark, or skips
// it where there is none (scripts/install-redis.sh installs it).
func redis(b *testing.B) string {
	if _, err := exec.LookPath("redis-server"); err != nil {
		b.Skip("no redis-server: run scripts/install-redis.sh for the asynq row")
	}
	addr, err := freePort()
	if err != nil {
		b.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--appendonly", "yes",
		"--dir", b.TempDir(), "--save", "", "--daemonize", "no")
	cmd.Stdout, cmd.Stderr = nil, os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for range 200 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatal("redis-server did not start")
	return ""
}

// BenchmarkDistPut is one acknowledged put per operation, from one
// goroutine (ns per put: a round trip to a server that stores it).
func BenchmarkDistPut(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=loom", func(b *testing.B) {
		q := newDistEnv(b).loomQueue(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if err := q.Put(ctx, job{N: i}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=natsgo", func(b *testing.B) {
		e := newDistEnv(b)
		_, subject := e.rawQueue(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			data, _ := json.Marshal(job{N: i})
			if _, err := e.js.Publish(ctx, subject, data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=asynq", func(b *testing.B) {
		c := asynq.NewClient(asynq.RedisClientOpt{Addr: redis(b)})
		defer c.Close()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			data, _ := json.Marshal(job{N: i})
			if _, err := c.Enqueue(asynq.NewTask("job", data), asynq.MaxRetry(4)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=loom-queue", func(b *testing.B) {
		q := loom.NewQueue[job]("bench", 0)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if err := q.Put(ctx, job{N: i}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDistJobs is one job handled per operation: b.N jobs are put
// first, then workers take, decode, handle (a counter) and acknowledge
// them all (ns per job, so jobs per second is 1e9 over it).
func BenchmarkDistJobs(b *testing.B) {
	ctx := context.Background()
	for _, workers := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("workers=%d/impl=loom", workers), func(b *testing.B) {
			q := newDistEnv(b).loomQueue(b)
			for i := range b.N {
				if err := q.Put(ctx, job{N: i}); err != nil {
					b.Fatal(err)
				}
			}
			var handled atomic.Int64
			all := make(chan struct{})
			sctx, stop := context.WithCancel(ctx)
			served := make(chan error, 1)
			b.ReportAllocs()
			b.ResetTimer()
			go func() {
				served <- dist.Serve(sctx, q, func(ctx context.Context, j job) error {
					if handled.Add(1) == int64(b.N) {
						close(all)
					}
					return nil
				}, dist.Workers(workers))
			}()
			<-all
			b.StopTimer()
			stop()
			if err := <-served; err != nil {
				b.Fatal(err)
			}
		})
		b.Run(fmt.Sprintf("workers=%d/impl=natsgo", workers), func(b *testing.B) {
			e := newDistEnv(b)
			c, subject := e.rawQueue(b)
			for i := range b.N {
				data, _ := json.Marshal(job{N: i})
				if _, err := e.js.Publish(ctx, subject, data); err != nil {
					b.Fatal(err)
				}
			}
			var handled atomic.Int64
			wctx, stop := context.WithCancel(ctx)
			defer stop()
			all := make(chan struct{})
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			for range workers {
				wg.Go(func() {
					for wctx.Err() == nil {
						_ = rawTake(wctx, c, func(m natsjs.Msg) {
							var j job
							if err := json.Unmarshal(m.Data(), &j); err != nil {
								b.Error(err)
							}
							if err := m.DoubleAck(ctx); err != nil {
								b.Error(err)
							}
							if handled.Add(1) == int64(b.N) {
								close(all)
							}
						})
					}
				})
			}
			<-all // as for loom: the time until the last job is handled
			b.StopTimer()
			stop()
			wg.Wait()
		})
		b.Run(fmt.Sprintf("workers=%d/impl=asynq", workers), func(b *testing.B) {
			opt := asynq.RedisClientOpt{Addr: redis(b)}
			c := asynq.NewClient(opt)
			defer c.Close()
			for i := range b.N {
				data, _ := json.Marshal(job{N: i})
				if _, err := c.Enqueue(asynq.NewTask("job", data), asynq.MaxRetry(4)); err != nil {
					b.Fatal(err)
				}
			}
			var handled atomic.Int64
			all := make(chan struct{})
			srv := asynq.NewServer(opt, asynq.Config{Concurrency: workers, LogLevel: asynq.ErrorLevel})
			b.ReportAllocs()
			b.ResetTimer()
			if err := srv.Start(asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
				var j job
				if err := json.Unmarshal(t.Payload(), &j); err != nil {
					return err
				}
				if handled.Add(1) == int64(b.N) {
					close(all)
				}
				return nil
			})); err != nil {
				b.Fatal(err)
			}
			<-all
			b.StopTimer()
			srv.Shutdown()
		})
		b.Run(fmt.Sprintf("workers=%d/impl=loom-queue", workers), func(b *testing.B) {
			q := loom.NewQueue[job]("bench", 0)
			for i := range b.N {
				_ = q.Put(ctx, job{N: i})
			}
			q.Shutdown(false)
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			for range workers {
				wg.Go(func() {
					for {
						if _, err := q.Get(ctx); err != nil {
							return
						}
						_ = q.TaskDone()
					}
				})
			}
			wg.Wait()
		})
	}
}

// BenchmarkDistLatency puts one job at a time to one worker and reports
// the time from Put to the handler, p50 and p99 (ms), over the run.
func BenchmarkDistLatency(b *testing.B) {
	ctx := context.Background()
	report := func(b *testing.B, lat []time.Duration) {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
	measure := func(b *testing.B, put func(j job) error, got <-chan time.Duration) {
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := range b.N {
			if err := put(job{N: i, Sent: time.Now().UnixNano()}); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, <-got)
		}
		b.StopTimer()
		report(b, lat)
	}
	since := func(j job) time.Duration { return time.Duration(time.Now().UnixNano() - j.Sent) }
	b.Run("impl=loom", func(b *testing.B) {
		q := newDistEnv(b).loomQueue(b)
		got := make(chan time.Duration, 1)
		sctx, stop := context.WithCancel(ctx)
		served := make(chan error, 1)
		go func() {
			served <- dist.Serve(sctx, q, func(ctx context.Context, j job) error { got <- since(j); return nil }, dist.Workers(1))
		}()
		measure(b, func(j job) error { return q.Put(ctx, j) }, got)
		stop()
		<-served
	})
	b.Run("impl=natsgo", func(b *testing.B) {
		e := newDistEnv(b)
		c, subject := e.rawQueue(b)
		got := make(chan time.Duration, 1)
		wctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for wctx.Err() == nil {
				_ = rawTake(wctx, c, func(m natsjs.Msg) {
					var j job
					_ = json.Unmarshal(m.Data(), &j)
					got <- since(j)
					_ = m.DoubleAck(ctx)
				})
			}
		}()
		measure(b, func(j job) error {
			data, _ := json.Marshal(j)
			_, err := e.js.Publish(ctx, subject, data)
			return err
		}, got)
		stop()
		<-done
	})
	b.Run("impl=asynq", func(b *testing.B) {
		opt := asynq.RedisClientOpt{Addr: redis(b)}
		c := asynq.NewClient(opt)
		defer c.Close()
		got := make(chan time.Duration, 1)
		srv := asynq.NewServer(opt, asynq.Config{Concurrency: 1, LogLevel: asynq.ErrorLevel})
		if err := srv.Start(asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			var j job
			_ = json.Unmarshal(t.Payload(), &j)
			got <- since(j)
			return nil
		})); err != nil {
			b.Fatal(err)
		}
		defer srv.Shutdown()
		measure(b, func(j job) error {
			data, _ := json.Marshal(j)
			_, err := c.Enqueue(asynq.NewTask("job", data))
			return err
		}, got)
	})
}

// BenchmarkDistPool is one remote call per operation, submitted and waited
// for one at a time (the round trip): loom's remote pool on an embedded
// JetStream server against the local process pool (a child process on
// this machine) and raw nats.go request/reply doing the same gob work.
// The throughput rows run 64 calls in flight over 1, 4 and 16 workers.
func BenchmarkDistPool(b *testing.B) {
	ctx := context.Background()
	b.Run("roundtrip/impl=loom", func(b *testing.B) {
		e := newDistEnv(b)
		p, stop := distPoolEnv(b, e, 1)
		defer stop()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			t, err := dist.Submit(ctx, p, double, i)
			if err != nil {
				b.Fatal(err)
			}
			if v, err := t.Wait(ctx); err != nil || v != 2*i {
				b.Fatal(v, err)
			}
		}
		b.StopTimer() // not the workers' shutdown
	})
	b.Run("roundtrip/impl=processpool", func(b *testing.B) {
		pp := pool.NewProcessPool("bench", pool.WithSize(1))
		defer pp.Close(ctx)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			t, err := pool.Run(ctx, pp, double, i)
			if err != nil {
				b.Fatal(err)
			}
			if v, err := t.Wait(ctx); err != nil || v != 2*i {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("roundtrip/impl=natsreq", func(b *testing.B) {
		e := newDistEnv(b)
		nc := e.b.Conn()
		sub, err := nc.Subscribe("bench.double", func(m *nats.Msg) {
			out, err := pool.Invoke(ctx, "double", m.Data)
			if err != nil {
				b.Error(err)
			}
			_ = m.Respond(out)
		})
		if err != nil {
			b.Fatal(err)
		}
		defer sub.Unsubscribe()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			arg, _ := double.EncodeArg(i)
			m, err := nc.RequestWithContext(ctx, "bench.double", arg)
			if err != nil {
				b.Fatal(err)
			}
			if v, err := double.DecodeResult(m.Data); err != nil || v != 2*i {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("roundtrip/impl=natsjs", func(b *testing.B) {
		r := newRawPool(b, 1)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			r.submit(b, i)
			if v := <-r.results; v != 2*i {
				b.Fatal(v)
			}
		}
		b.StopTimer()
		r.stop()
	})
	for _, workers := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("workers=%d/impl=loom", workers), func(b *testing.B) {
			e := newDistEnv(b)
			p, stop := distPoolEnv(b, e, workers)
			defer stop()
			// One collector takes the results, as raw nats.go's does (in
			// submission order; 64 in flight keep the workers busy).
			inFlight := make(chan *loom.Task[int], 64)
			collected := make(chan struct{})
			b.ReportAllocs()
			b.ResetTimer()
			go func() {
				defer close(collected)
				i := 0
				for t := range inFlight {
					if v, err := t.Wait(ctx); err != nil || v != 2*i {
						b.Error(v, err)
					}
					i++
				}
			}()
			for i := range b.N {
				t, err := dist.Submit(ctx, p, double, i)
				if err != nil {
					b.Fatal(err)
				}
				inFlight <- t
			}
			close(inFlight)
			<-collected
			b.StopTimer() // not the workers' shutdown
		})
		b.Run(fmt.Sprintf("workers=%d/impl=natsjs", workers), func(b *testing.B) {
			r := newRawPool(b, workers)
			sem := make(chan struct{}, 64)
			collected := make(chan struct{})
			go func() {
				defer close(collected)
				for range b.N {
					<-r.results
					<-sem
				}
			}()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				sem <- struct{}{}
				r.submit(b, i)
			}
			<-collected
			b.StopTimer()
			r.stop()
		})
	}
}

// rawPool is raw nats.go doing the durable work the remote pool does, on
// the same kind of streams: each job published (with a message ID) to a
// work-queue stream, taken by one of the workers, the function run, its
// result published (with the job's ID) to the caller's own stream, the
// job acked, the result taken by the caller and acked. No cancellation,
// deadlines, headers or monitor: the reference for loom's overhead over a
// durable round trip on the same server.
type rawPool struct {
	e          *distEnv
	jobSubject string
	results    chan int
	stop       func()
}

func newRawPool(b *testing.B, workers int) *rawPool {
	ctx := context.Background()
	e := newDistEnv(b)
	jobs, jobSubject := e.rawQueue(b)
	results, resultSubject := e.rawQueue(b)
	r := &rawPool{e: e, jobSubject: jobSubject, results: make(chan int, 64)}
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for wctx.Err() == nil {
				_ = rawTake(wctx, jobs, func(m natsjs.Msg) {
					out, err := pool.Invoke(ctx, "double", m.Data())
					if err != nil {
						b.Error(err)
					}
					id := m.Headers()[natsjs.MsgIDHeader]
					if _, err := e.js.Publish(ctx, resultSubject, out, natsjs.WithMsgID(id[0])); err != nil {
						b.Error(err)
					}
					if err := m.DoubleAck(ctx); err != nil {
						b.Error(err)
					}
				})
			}
		})
	}
	wg.Go(func() { // the caller's result reader
		for wctx.Err() == nil {
			_ = rawTake(wctx, results, func(m natsjs.Msg) {
				v, err := double.DecodeResult(m.Data())
				if err != nil {
					b.Error(err)
				}
				if err := m.DoubleAck(ctx); err != nil {
					b.Error(err)
				}
				r.results <- v
			})
		}
	})
	r.stop = func() { stop(); wg.Wait() }
	return r
}

var rawJobID atomic.Int64

func (r *rawPool) submit(b *testing.B, i int) {
	arg, _ := double.EncodeArg(i)
	id := strconv.FormatInt(rawJobID.Add(1), 10)
	if _, err := r.e.js.Publish(context.Background(), r.jobSubject, arg, natsjs.WithMsgID(id)); err != nil {
		b.Fatal(err)
	}
}

// distPoolEnv opens a remote pool on e and serves it with workers workers
// in this process.
func distPoolEnv(b *testing.B, e *distEnv, workers int) (*dist.Pool, func()) {
	name := fmt.Sprintf("bp%d", distSeq.Add(1))
	p, err := dist.NewPool(context.Background(), e.b, name)
	if err != nil {
		b.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dist.ServePool(ctx, e.b, name, nil, dist.Workers(workers)) }()
	// One call before the clock starts: the worker has opened its queues
	// (and the heartbeat bucket) and the caller's result reader is fetching.
	if _, err := dist.Remote(p, double)(context.Background(), 1); err != nil {
		b.Fatal(err)
	}
	return p, func() {
		stop()
		<-done
		p.Close()
	}
}
