package httpd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"loom/loop"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in        string
		n         int
		err       error
		keepAlive bool
		body      string
	}{
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27, nil, true, ""},
		{"GET / HTTP/1.0\r\n\r\n", 18, nil, false, ""},
		{"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 42, nil, true, ""},
		{"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET", 42, nil, true, "abc"},
		{"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nab", 0, errIncomplete, false, ""},
		{"GET / HTTP/1.1\r\nHost: x\r\n", 0, errIncomplete, false, ""},
		{"GET / HTTP/2.0\r\n\r\n", 0, errVersion, false, ""},
		{"GET /\r\n\r\n", 0, errBadRequest, false, ""},
		{"G(T / HTTP/1.1\r\n\r\n", 0, errBadRequest, false, ""},
		{"GET / HTTP/1.1\r\nbad header\r\n\r\n", 0, errBadRequest, false, ""},
		{"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 0, errBadRequest, false, ""},
		{"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 0, errBadRequest, false, ""},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 0, errChunked, false, ""},
		{"GET / HTTP/1.1\r\nX: " + strings.Repeat("a", maxHeaderBytes) + "\r\n\r\n", 0, errHeaderTooLarge, false, ""},
	} {
		r, n, err := parse([]byte(c.in))
		if n != c.n || err != c.err || (err == nil && (r.KeepAlive != c.keepAlive || string(r.Body) != c.body)) {
			t.Errorf("parse(%.40q) = %d, %v, keep-alive %v, body %q", c.in, n, err, r.KeepAlive, r.Body)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "POST /p HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.1\r\n\r\n", "\r\n\r\n", "GET  HTTP/1.1\r\n\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, n, err := parse(b)
		switch {
		case err == nil:
			if n <= 0 || n > len(b) || len(r.Method) == 0 || len(r.Target) == 0 {
				t.Fatalf("accepted %q with n=%d", b, n)
			}
		case err == errIncomplete:
			if n != 0 {
				t.Fatal("incomplete with bytes used")
			}
		default:
			var pe *parseError
			if !errors.As(err, &pe) || pe.status < 400 {
				t.Fatalf("error %v", err)
			}
		}
	})
}

func serve(t *testing.T, s *Server) string {
	t.Helper()
	l, err := loop.New()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := l.Listen("127.0.0.1:0", s)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

func TestServesNetHTTPClients(t *testing.T) {
	fail, _ := ParseRule("/flaky=fail:0.5")
	slow, _ := ParseRule("/slow=latency:30ms")
	addr := serve(t, New(fail, slow))
	client := &http.Client{}
	defer client.CloseIdleConnections()
	get := func(path string) (int, string) {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/health"); code != 200 || body != "ok\n" {
		t.Fatal(code, body)
	}
	if code, body := get("/docs/intro"); code != 200 || !strings.Contains(body, "<title>loom serve /docs/intro</title>") {
		t.Fatal(code, body)
	}
	codes := []int{}
	for range 4 {
		c, _ := get("/flaky")
		codes = append(codes, c)
	}
	if fmt.Sprint(codes) != "[200 503 200 503]" {
		t.Fatalf("flaky: %v", codes)
	}
	start := time.Now()
	if code, _ := get("/slow/x"); code != 200 || time.Since(start) < 30*time.Millisecond {
		t.Fatalf("slow: %d after %v", code, time.Since(start))
	}
}

// Pipelined requests are answered in order, even when an earlier one is
// slower; Connection: close closes after its answer.
func TestPipeliningKeepsOrder(t *testing.T) {
	slow, _ := ParseRule("/slow=latency:40ms")
	addr := serve(t, New(slow))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /fast HTTP/1.1\r\nHost: x\r\n\r\nGET /last HTTP/1.1\r\nConnection: close\r\n\r\n")
	r := bufio.NewReader(c)
	for _, want := range []string{"/slow", "/fast", "/last"} {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), "<title>loom serve "+want+"</title>") {
			t.Fatalf("want %s, got %s", want, b)
		}
	}
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("connection not closed after Connection: close: %v", err)
	}
}

// A head that takes longer than HeadTimeout to arrive gets the connection
// closed (slowloris); one that arrives in time is served, and the time
// between two requests of a keep-alive connection does not count.
func TestHeadTimeout(t *testing.T) {
	s := New()
	s.HeadTimeout = 300 * time.Millisecond
	addr := serve(t, s)

	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprint(slow, "GET / HTTP/1.1\r\nHost: x\r\n") // and never the blank line
	_ = slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := slow.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("trickling client: read %d, %v; want the connection closed", n, err)
	}

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	fmt.Fprint(c, "GET /health HTTP/1.1\r\n")
	time.Sleep(20 * time.Millisecond) // within the timeout
	fmt.Fprint(c, "Host: x\r\n\r\n")
	for i := range 2 {
		resp, err := http.ReadResponse(r, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("request %d: %v %v", i, resp, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if i == 0 {
			time.Sleep(400 * time.Millisecond) // idle past HeadTimeout between requests: allowed
			fmt.Fprint(c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
		}
	}
}

func TestBadRequestsGetAnErrorAndAClose(t *testing.T) {
	s := New()
	addr := serve(t, s)
	for _, raw := range []string{"NOT HTTP\r\n\r\n", "GET / HTTP/3.0\r\n\r\n", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(c, raw)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil || resp.StatusCode < 400 || !resp.Close {
			t.Fatalf("%q: %v %v", raw, resp, err)
		}
	}
	if s.BadRequests.Load() != 3 {
		t.Fatal(s.BadRequests.Load())
	}
	for _, bad := range []string{"flaky", "/x=fail:2", "/x=latency:soon", "/x=speed:1"} {
		if _, err := ParseRule(bad); err == nil {
			t.Errorf("rule %q accepted", bad)
		}
	}
}

// FuzzParseRule checks that a rule either is refused with an error or
// makes sense (a path prefix, a non-negative latency, a fail rate in
// 0..1), and that writing it back out parses to the same rule.
func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"/flaky=fail:0.5", "/slow=latency:30ms", "/x=latency:1s,fail:1", "/x=fail:NaN", "/x=", "flaky", "/=fail:0", "/a=b=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRule(s)
		if err != nil {
			if r != nil {
				t.Fatalf("%q: a rule and an error", s)
			}
			return
		}
		if !strings.HasPrefix(r.Prefix, "/") || r.Latency < 0 || !(r.FailRate >= 0 && r.FailRate <= 1) {
			t.Fatalf("%q accepted as %+v", s, r)
		}
		again, err := ParseRule(fmt.Sprintf("%s=latency:%v,fail:%v", r.Prefix, r.Latency, r.FailRate))
		if err != nil || again.Prefix != r.Prefix || again.Latency != r.Latency || again.FailRate != r.FailRate {
			t.Fatalf("%q: %+v written back parses to %+v, %v", s, r, again, err)
		}
	})
}
