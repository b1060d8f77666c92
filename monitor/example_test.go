package monitor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"loom"
	"loom/monitor"
)

// Mount the monitor in a server of your own and read the live tasks.
func ExampleHandler() {
	h, err := monitor.Handler()
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	release := make(chan struct{})
	task := loom.Go(context.Background(), "report", func(ctx context.Context) (int, error) { <-release; return 1, nil })
	defer func() { close(release); task.Wait(context.Background()) }()

	resp, err := http.Get(fmt.Sprintf("%s/api/tasks/%d", srv.URL, task.ID()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var t monitor.Task
	_ = json.NewDecoder(resp.Body).Decode(&t)
	fmt.Println(t.Kind, t.Name, t.State)
	// Output: task report running
}

// CPU time by task name, from a short CPU profile read by the pprof
// labels loom puts on task goroutines (GET /api/cpu serves the same).
func ExampleSampleCPU() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	busy := loom.Go(ctx, "hashing", func(ctx context.Context) (int, error) {
		n := 0
		for ctx.Err() == nil {
			n++
		}
		return n, nil
	})
	p, err := monitor.SampleCPU(context.Background(), 500*time.Millisecond)
	stop()
	_, _ = busy.Wait(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range p.Shares {
		if s.Name == "hashing" {
			fmt.Println("hashing took a share:", s.Share > 0)
		}
	}
	// Output: hashing took a share: true
}
