package httpd

import (
	"bufio"
	"bytes"
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
		{"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET", 51, nil, true, "abc"},
		{"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nab", 0, errIncomplete, false, ""},
		{"GET / HTTP/1.1\r\nHost: x\r\n", 0, errIncomplete, false, ""},
		{"GET / HTTP/2.0\r\n\r\n", 0, errVersion, false, ""},
		{"GET /\r\n\r\n", 0, errBadRequest, false, ""},
		{"G(T / HTTP/1.1\r\n\r\n", 0, errBadRequest, false, ""},
		{"GET / HTTP/1.1\r\nbad header\r\n\r\n", 0, errBadRequest, false, ""},
		{"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 0, errBadRequest, false, ""},
		{"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 0, errBadRequest, false, ""},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 0, errChunked, false, ""},
		{"GET / HTTP/1.1\r\nX: " + strings.Repeat("a", maxHeaderBytes) + "\r\n\r\n", 0, errHeaderTooLarge, false, ""},
		{"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 007\r\n\r\n", 0, errIncomplete, false, ""},
	} {
		r, n, err := parse([]byte(c.in))
		if n != c.n || err != c.err || (err == nil && (r.KeepAlive != c.keepAlive || string(r.Body) != c.body)) {
			t.Errorf("parse(%.40q) = %d, %v, keep-alive %v, body %q", c.in, n, err, r.KeepAlive, r.Body)
		}
	}
}

// lenient lists what the parser once accepted and RFC 9112 (and net/http)
// refuse: each must get 400 (issue 13 item 7). They seed FuzzParse too.
var lenient = []string{
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc",
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x3\r\n\r\nabc",
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3 3\r\n\r\nabc",
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX: a\nContent-Length: 5\r\n\r\nhello", // bare LF: smuggling
	"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",                      // bare CR
	"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",                    // NUL
	"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n",                    // control byte
	"GET / HTTP/1.1\nHost: x\r\n\r\n",                                   // bare LF after the request line
	"GET / HTTP/1.1\r\n\r\n",                                            // no Host
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",                      // two Hosts
	"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n",                           // control byte in the path
	"GET /a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n",                           // DEL in the path
	"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",                      // obsolete line folding
	"GET / HTTP/1.1\r\nHost : x\r\n\r\n",                                // space before the colon
}

func TestParseRefusesLenientInput(t *testing.T) {
	for _, in := range lenient {
		if _, _, err := parse([]byte(in)); err != errBadRequest {
			t.Errorf("parse(%q) = %v, want 400 bad request", in, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range lenient {
		f.Add([]byte(s))
	}
	for _, s := range []string{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "POST /p HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n", "\r\n\r\n", "GET  HTTP/1.1\r\n\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, n, err := parse(b)
		switch {
		case err == nil:
			if n <= 0 || n > len(b) || len(r.Method) == 0 || len(r.Target) == 0 {
				t.Fatalf("accepted %q with n=%d", b, n)
			}
			head := b[:bytes.Index(b, []byte("\r\n\r\n"))]
			if bytes.Count(head, []byte("\n")) != bytes.Count(head, []byte("\r\n")) || bytes.IndexByte(head, 0) >= 0 {
				t.Fatalf("accepted %q: a bare LF or a NUL in its head", b)
			}
			if r.Minor == 1 && len(r.Host) == 0 && !bytes.Contains(bytes.ToLower(head), []byte("\r\nhost:")) {
				t.Fatalf("accepted HTTP/1.1 %q without a Host", b)
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
	addr, _ := serveHandler(t, s)
	return addr
}

// serveHandler serves h on a loop of its own until the test ends, and
// returns the address and the loop.
func serveHandler(t *testing.T, h loop.Handler) (string, *loop.Loop) {
	t.Helper()
	l, err := loop.New()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := l.Listen("127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String(), l
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
	fmt.Fprint(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /fast HTTP/1.1\r\nHost: x\r\n\r\nGET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
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

// probe is a Server that remembers its connections, so that a test can
// read their figures on the loop.
type probe struct {
	*Server
	conns chan *loop.Conn
}

func (p *probe) OnOpen(c *loop.Conn) { p.Server.OnOpen(c); p.conns <- c }

// serveProbe serves s on a loop of its own and returns the address, the
// loop, and the connections as they open.
func serveProbe(t *testing.T, s *Server) (string, *loop.Loop, <-chan *loop.Conn) {
	t.Helper()
	p := &probe{Server: s, conns: make(chan *loop.Conn, 16)}
	addr, l := serveHandler(t, p)
	return addr, l, p.conns
}

// onLoop runs f on l and waits for it.
func onLoop(t *testing.T, l *loop.Loop, f func()) {
	t.Helper()
	done := make(chan struct{})
	if err := l.Post(func() { f(); close(done) }); err != nil {
		t.Fatal(err)
	}
	<-done
}

// pipelineUnread writes pipelined requests to c without ever reading the
// answers, until the server stops taking them (a write blocks for 300 ms)
// or limit bytes have gone; it returns how many bytes went.
func pipelineUnread(c net.Conn, limit int) int {
	req := bytes.Repeat([]byte("GET /page HTTP/1.1\r\nHost: x\r\n\r\n"), 1024)
	sent := 0
	for sent < limit {
		_ = c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := c.Write(req)
		sent += n
		if err != nil {
			break
		}
	}
	return sent
}

// A client that pipelines requests and never reads the answers makes the
// server stop reading it: what the server holds for it stays within the
// high watermark and one read, however much the client sends, /health
// still answers meanwhile, and WriteTimeout closes the client (issue 13
// item 6: before, one such client drove the server past 1 GiB).
func TestNonReadingClientIsBounded(t *testing.T) {
	s := New()
	s.WriteTimeout = time.Hour // armed below, once the figures are read
	addr, l, conns := serveProbe(t, s)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	server := <-conns
	sent := pipelineUnread(c, 256<<20)
	var unsent int
	onLoop(t, l, func() { unsent = server.Buffered() })
	t.Logf("client sent %d KiB of requests before the server stopped reading; server holds %d KiB of answers and %d KiB of requests for it, answered %d",
		sent>>10, unsent>>10, s.Buffered()>>10, s.Requests.Load())
	if sent >= 256<<20 {
		t.Fatalf("the server read all %d MiB a non-reading client sent", sent>>20)
	}
	if unsent > 64<<10+1024 {
		t.Fatalf("server holds %d bytes of unsent answers, want at most the 64 KiB high watermark and one answer", unsent)
	}
	if b := s.Buffered(); b > 64<<10+maxHeaderBytes {
		t.Fatalf("server holds %d bytes of requests, want at most one read and a partial head", b)
	}
	resp, err := http.Get("http://" + addr + "/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/health while a client does not read: %v %v", resp, err)
	}
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()

	// A second non-reading client, now with a short WriteTimeout: it is
	// closed.
	onLoop(t, l, func() { s.WriteTimeout = 100 * time.Millisecond })
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	<-conns
	pipelineUnread(c2, 64<<20)
	deadline := time.Now().Add(10 * time.Second)
	for s.Stalled.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s.Stalled.Load() == 0 {
		t.Fatal("WriteTimeout did not close a client that never read")
	}
}

// Partial requests count against MaxBuffered across connections: a read
// that would pass it gets 503 and a close, and the total held stays under
// it (issue 13 item 6: 300 connections each holding a partial 1 MiB body
// cost 317 MiB).
func TestPartialBodiesAreBoundedInTotal(t *testing.T) {
	s := New()
	s.MaxBuffered = 1 << 20
	addr, _, _ := serveProbe(t, s)
	head := fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", maxBodyBytes)
	part := bytes.Repeat([]byte("x"), 300<<10)
	var refused int
	for i := range 6 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprint(c, head)
		if _, err := c.Write(part); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			if resp.StatusCode != 503 || !resp.Close {
				t.Fatalf("connection %d: %d, want 503 and a close", i, resp.StatusCode)
			}
			refused++
		}
		if b := s.Buffered(); b > s.MaxBuffered {
			t.Fatalf("server holds %d bytes of partial requests, over MaxBuffered %d", b, s.MaxBuffered)
		}
	}
	if refused < 3 || s.Overloaded.Load() != int64(refused) {
		t.Fatalf("%d of 6 partial 300 KiB bodies refused (Overloaded %d) under a 1 MiB budget", refused, s.Overloaded.Load())
	}
}

// The page echoes the request path escaped: a path cannot put markup into
// it (issue 13 item 8, reflected XSS).
func TestPageEscapesThePath(t *testing.T) {
	addr := serve(t, New())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /<script>alert(1)</script>\"onmouseover=x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if bytes.Contains(body, []byte("<script>")) || bytes.Contains(body, []byte(`"onmouseover`)) {
		t.Fatalf("the path went into the page unescaped: %s", body)
	}
	if !bytes.Contains(body, []byte("&lt;script&gt;alert(1)&lt;/script&gt;&#34;onmouseover=x")) {
		t.Fatalf("the escaped path is missing from the page: %s", body)
	}
}

// TestTokenBytes checks the token table against RFC 9110's own list of
// tchar: "!#$%&'*+-.^_`|~", digits and letters, and nothing else.
func TestTokenBytes(t *testing.T) {
	for c := range 256 {
		want := strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) ||
			'0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if got := token([]byte{byte(c)}); got != want {
			t.Errorf("token(%q) = %v, want %v", byte(c), got, want)
		}
	}
}

// TestRequestsSplitAcrossReads sends three pipelined requests in two
// writes, split at every byte, with a pause between so that the server
// reads them apart: the rest of a request left in one read must be kept
// (the server parses the loop's read buffer in place when nothing is
// buffered, and keeps only what is left) and joined with the next.
func TestRequestsSplitAcrossReads(t *testing.T) {
	addr := serve(t, New())
	reqs := "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n"
	for cut := 1; cut < len(reqs); cut++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, reqs[:cut]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // let the server read the first part alone
		if _, err := io.WriteString(c, reqs[cut:]); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(c)
		for _, want := range []string{"/a", "/b", "/c"} {
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatalf("cut at %d: %v", cut, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(b), "<title>loom serve "+want+"</title>") {
				t.Fatalf("cut at %d: want %s, got %s", cut, want, b)
			}
		}
		c.Close()
	}
}

// TestFieldValuesAreTrimmed checks that the white space around a field
// value (spaces and tabs, RFC 9110 section 5.5) is not part of it, and
// that the white space inside is.
func TestFieldValuesAreTrimmed(t *testing.T) {
	for _, c := range []struct{ value, want string }{
		{"x", "x"}, {"  x", "x"}, {"x \t ", "x"}, {"\t x y \t", "x y"}, {"", ""}, {" \t ", ""},
	} {
		r, _, err := parse([]byte("GET / HTTP/1.0\r\nHost:" + c.value + "\r\n\r\n"))
		if err != nil || string(r.Host) != c.want {
			t.Errorf("Host:%q gave %q, %v; want %q", c.value, r.Host, err, c.want)
		}
	}
	r, _, err := parse([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\t 2 \t\r\n\r\nab"))
	if err != nil || string(r.Body) != "ab" {
		t.Errorf("a padded Content-Length gave body %q, %v", r.Body, err)
	}
}
