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

// The task list sorted on the server and read a page at a time: the
// answer's next and next_key are the cursor of the page after.
func ExampleHandler_sortedPages() {
	h, err := monitor.Handler()
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	ctx, stop := context.WithCancel(context.Background())
	g := loom.NewGroup(ctx, loom.WithName("crawl"))
	for _, name := range []string{"fetch-c", "fetch-a", "fetch-d", "fetch-b"} {
		g.Go(name, func(ctx context.Context) error { <-ctx.Done(); return nil })
	}
	defer func() { stop(); _ = g.Wait() }()

	url := srv.URL + "/api/tasks?name=fetch-&sort=" + monitor.SortName + "&limit=3"
	for page := url; page != ""; {
		resp, err := http.Get(page)
		if err != nil {
			fmt.Println(err)
			return
		}
		var p monitor.TaskPage
		_ = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		for _, t := range p.Tasks {
			fmt.Print(t.Name, " ")
		}
		fmt.Println("of", p.Total)
		page = ""
		if p.Truncated {
			page = fmt.Sprintf("%s&after=%d&after_key=%s", url, p.Next, p.NextKey)
		}
	}
	// Output:
	// fetch-a fetch-b fetch-c of 4
	// fetch-d of 1
}
