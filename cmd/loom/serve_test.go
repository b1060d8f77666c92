package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestServeAnswersAndStopsOnCancel(t *testing.T) {
	pr, pw := io.Pipe()
	root := newRoot()
	root.SetOut(pw)
	root.SetArgs([]string{"serve", "--addr", "127.0.0.1:0", "--loops", "2", "--rule", "/flaky=fail:1",
		"--idle-timeout", "100ms", "--head-timeout", "100ms"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx); pw.Close() }()
	lines := bufio.NewScanner(pr)
	lines.Scan()
	first := lines.Text()
	url, ok := strings.CutPrefix(first, "serving on ")
	if !ok {
		t.Fatalf("first line %q", first)
	}
	url, _, _ = strings.Cut(url, " ")
	client := &http.Client{}
	for path, want := range map[string]int{"/health": 200, "/x": 200, "/flaky": 503} {
		resp, err := client.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
	client.CloseIdleConnections()
	// A client that connects and says nothing, and one that starts a
	// request head and stalls, are both closed by the server.
	for _, send := range []string{"", "GET / HTTP/1.1\r\n"} {
		c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(c, send)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("after sending %q: %v, want the server to close", send, err)
		}
		c.Close()
	}
	cancel()
	var rest strings.Builder
	for lines.Scan() {
		rest.WriteString(lines.Text())
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rest.String(), "served 3 requests (1 injected failures") {
		t.Fatalf("report %q", rest.String())
	}
	if _, err := runLoom(t, "serve", "--rule", "nonsense"); err == nil {
		t.Fatal("bad rule accepted")
	}
	if _, err := runLoom(t, "serve", "--idle-timeout", "-1s"); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("negative idle timeout: %v", err)
	}
}
