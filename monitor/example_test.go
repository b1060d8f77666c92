package monitor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

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
