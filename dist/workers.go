package dist

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"sync/atomic"
	"time"
)

// WorkerInfo is a remote worker of a pool, as its heartbeats tell: the
// workers of ServePool write one every HeartbeatEvery into the backend's
// Registry, and RemoteWorkers reads them.
type WorkerInfo struct {
	ID      string
	Pool    string
	Host    string
	PID     int
	Started time.Time
	// Seen is the time of its last heartbeat, Every their interval.
	Seen  time.Time
	Every time.Duration
	// Running and Done count its jobs running now and finished; Orphaned,
	// the finished jobs whose result it dropped because their caller had
	// closed its pool.
	Running, Done, Orphaned int64
	// Left is set by a worker that stopped cleanly; Lost, by RemoteWorkers,
	// for one whose heartbeats stopped without that (killed, or cut off)
	// for three intervals.
	Left, Lost bool
}

// DefaultHeartbeatEvery is how often a ServePool worker writes its
// heartbeat.
const DefaultHeartbeatEvery = 2 * time.Second

// Heartbeat sets how often ServePool writes its worker's heartbeat
// (default DefaultHeartbeatEvery); Serve ignores it.
func Heartbeat(d time.Duration) ServeOption {
	return func(c *serveConfig) error {
		if d <= 0 {
			return invalid("heartbeat interval %v; want more than 0", d)
		}
		c.heartbeat = d
		return nil
	}
}

func workersPrefix(pool string) string { return "workers." + pool + "." }

// RemoteWorkers lists the workers that serve (or served) the remote pool
// named pool, oldest first, marking as lost those whose heartbeats stopped
// without a clean exit. The backend must implement Registry.
func RemoteWorkers(ctx context.Context, b Backend, pool string) ([]WorkerInfo, error) {
	r, ok := b.(Registry)
	if !ok || ctx == nil {
		return nil, fmt.Errorf("dist.RemoteWorkers: %w", invalid("nil context, or backend %T keeps no records", b))
	}
	recs, err := r.Records(ctx, workersPrefix(pool))
	if err != nil {
		return nil, fmt.Errorf("dist.RemoteWorkers: %w", err)
	}
	now := time.Now()
	out := make([]WorkerInfo, 0, len(recs))
	for _, raw := range recs {
		var w WorkerInfo
		if len(raw) > MaxRecordBytes || json.Unmarshal(raw, &w) != nil {
			continue // not a heartbeat of ours
		}
		w.Lost = !w.Left && now.Sub(w.Seen) > 3*max(w.Every, time.Millisecond)
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out, nil
}

// heartbeats writes a worker's heartbeat every c.heartbeat until ctx ends,
// then a last one that says it left, with w's counts.
func heartbeats(ctx context.Context, r Registry, pool string, every time.Duration, pw *poolWorker) (stop func()) {
	host, _ := os.Hostname()
	w := WorkerInfo{ID: newID(), Pool: pool, Host: host, PID: os.Getpid(), Started: time.Now(), Every: every}
	key := workersPrefix(pool) + w.ID
	write := func(left bool) {
		w.Seen, w.Running, w.Done, w.Orphaned, w.Left = time.Now(), pw.nrunning.Load(), pw.ndone.Load(), pw.orphaned.Load(), left
		data, _ := json.Marshal(w)
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), every)
		defer cancel()
		_ = r.Record(wctx, key, data) // a missed beat is made up by the next
	}
	write(false)
	end := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-end:
				write(true)
				return
			case <-t.C:
				write(false)
			}
		}
	}()
	return func() { close(end); <-finished }
}

// refresher reads something from the backend for the monitor, in the
// background and at most once a second, so that a monitor's read never
// waits for a round trip to the backend.
type refresher struct {
	busy atomic.Bool
	at   atomic.Int64 // UnixNano of the last read
}

// maybe starts read, with a 2s deadline, unless one is running or one ran
// less than a second ago, or stopped is true.
func (r *refresher) maybe(stopped bool, read func(ctx context.Context)) {
	if stopped || time.Now().UnixNano()-r.at.Load() < int64(time.Second) || !r.busy.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer r.busy.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		read(ctx)
		r.at.Store(time.Now().UnixNano())
	}()
}
