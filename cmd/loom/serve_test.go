package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestServeAnswersAndStopsOnCancel(t *testing.T) {
	pr, pw := io.Pipe()
	root := newRoot()
	root.SetOut(pw)
	root.SetArgs([]string{"serve", "--addr", "127.0.0.1:0", "--loops", "2", "--rule", "/flaky=fail:1"})
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
}
