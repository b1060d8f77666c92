// Package scale makes the load that the monitor's scale benchmarks share:
// many live tasks, blocked until released, in a thousand groups, as a
// server with many requests in flight holds them, and a monitor to watch
// them.
package scale

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"

	"loom"
	"loom/monitor"
)

// Groups is how many groups Blocked spreads its tasks over.
const Groups = 1000

// Blocked starts n tasks named task running fn, n/Groups in each of
// Groups groups named prefix-0, prefix-1, ...; fn should block until its
// context is cancelled, which release does before it waits for every
// group (it may be called more than once). The caller passes fn so that
// the tasks' "where created" is the caller's code, as in a program, not
// loom's. n must be a multiple of Groups.
func Blocked(n int, prefix, task string, fn func(context.Context) error) (groups []*loom.Group, release func(), err error) {
	if n <= 0 || n%Groups != 0 {
		return nil, nil, fmt.Errorf("scale.Blocked: %w: %d tasks is not a positive multiple of %d", loom.ErrInvalidArgument, n, Groups)
	}
	if fn == nil {
		return nil, nil, fmt.Errorf("scale.Blocked: %w: nil function", loom.ErrInvalidArgument)
	}
	ctx, stop := context.WithCancel(context.Background())
	for g := range Groups {
		grp := loom.NewGroup(ctx, loom.WithName(fmt.Sprintf("%s-%d", prefix, g)))
		for range n / Groups {
			grp.Go(task, fn)
		}
		groups = append(groups, grp)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			stop()
			for _, g := range groups {
				_ = g.Wait()
			}
		})
	}
	return groups, release, nil
}

// Watched is a load of blocked tasks and a monitor serving them on
// loopback.
type Watched struct {
	// Groups are the groups of the tasks, as Blocked made them.
	Groups []*loom.Group
	// URL is the monitor's address, http://127.0.0.1:port.
	URL     string
	srv     *httptest.Server
	release func()
}

// Watch starts n blocked tasks as Blocked does, and a monitor that serves
// them. Close stops both.
func Watch(n int, prefix, task string, fn func(context.Context) error) (*Watched, error) {
	h, err := monitor.Handler()
	if err != nil {
		return nil, err
	}
	groups, release, err := Blocked(n, prefix, task, fn)
	if err != nil {
		return nil, err
	}
	srv := httptest.NewServer(h)
	return &Watched{Groups: groups, URL: srv.URL, srv: srv, release: release}, nil
}

// Close stops the monitor and ends the tasks.
func (w *Watched) Close() {
	w.srv.Close()
	w.release()
}
