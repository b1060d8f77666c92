package service_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"loom/policy"
	"loom/service"
)

// An HTTP server and a flaky background job under one supervisor: the
// server announces it is ready once it listens; the job is restarted when
// it fails.
func ExampleSupervisor() {
	sup := service.New("app", service.WithBackoff(policy.Backoff{Base: 10 * time.Millisecond, Max: time.Second, Jitter: policy.NoJitter}))
	var addr string
	_ = sup.Add(service.Service{Name: "http", Run: func(ctx context.Context, ready func()) error {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		addr = ln.Addr().String()
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })}
		ready()
		go func() { <-ctx.Done(); srv.Close() }()
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}})
	attempts := 0
	_ = sup.Add(service.Service{Name: "refresher", Run: func(ctx context.Context, ready func()) error {
		attempts++
		ready()
		if attempts < 3 {
			return errors.New("upstream unavailable")
		}
		<-ctx.Done()
		return nil
	}})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- sup.Run(ctx) }()
	<-sup.Ready()
	resp, err := http.Get("http://" + addr)
	if err == nil {
		fmt.Println("http:", resp.Status)
		resp.Body.Close()
	}
	for sup.Status()[1].Restarts < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	fmt.Println("run:", <-done)
	for _, st := range sup.Status() {
		fmt.Println(st.Name, st.State, st.Restarts)
	}
	// Output:
	// http: 200 OK
	// run: <nil>
	// http stopped 0
	// refresher stopped 2
}
