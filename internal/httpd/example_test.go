package httpd_test

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"loom/internal/httpd"
	"loom/loop"
)

// A server on one loop, with half of /flaky answered 503.
func ExampleServer() {
	l, _ := loop.New()
	flaky, _ := httpd.ParseRule("/flaky=fail:0.5")
	ln, _ := l.Listen("127.0.0.1:0", httpd.New(flaky))
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()

	client := &http.Client{}
	for _, path := range []string{"/health", "/flaky", "/flaky"} {
		resp, err := client.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			fmt.Println(err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s %d %q\n", path, resp.StatusCode, string(body)[:min(len(body), 16)])
	}
	client.CloseIdleConnections()
	stop()
	<-done
	// Output:
	// /health 200 "ok\n"
	// /flaky 200 "<!doctype html><"
	// /flaky 503 "injected failure"
}
