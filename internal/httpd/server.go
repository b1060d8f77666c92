package httpd

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"loom/loop"
)

// Rule injects latency and failures into the requests whose path starts
// with Prefix (the longest matching prefix wins).
type Rule struct {
	Prefix string
	// Latency delays the response; the loop is not blocked meanwhile.
	Latency time.Duration
	// FailRate answers this fraction of requests (0..1) with 503 and
	// Retry-After: 0, spread evenly (every second one for 0.5).
	FailRate float64

	count atomic.Int64
}

// ParseRule reads "PREFIX=latency:100ms,fail:0.25" (either part optional).
func ParseRule(s string) (*Rule, error) {
	prefix, spec, ok := strings.Cut(s, "=")
	if !ok || !strings.HasPrefix(prefix, "/") {
		return nil, fmt.Errorf("rule %q: want /PREFIX=latency:DURATION,fail:RATE", s)
	}
	r := &Rule{Prefix: prefix}
	for _, part := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(part, ":")
		switch {
		case !ok:
			return nil, fmt.Errorf("rule %q: %q is not key:value", s, part)
		case k == "latency":
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return nil, fmt.Errorf("rule %q: bad latency %q", s, v)
			}
			r.Latency = d
		case k == "fail":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !(f >= 0 && f <= 1) { // NaN too
				return nil, fmt.Errorf("rule %q: bad fail rate %q (want 0..1)", s, v)
			}
			r.FailRate = f
		default:
			return nil, fmt.Errorf("rule %q: unknown key %q", s, k)
		}
	}
	return r, nil
}

// fails reports whether the n-th request (from 1) under the rule fails.
func (r *Rule) fails(n int64) bool {
	return r.FailRate > 0 && math.Floor(float64(n)*r.FailRate) > math.Floor(float64(n-1)*r.FailRate)
}

// Server answers HTTP/1.1 on loop connections. Every path serves a small
// HTML page (a title and a few links, for crawlers), /health answers "ok".
type Server struct {
	rules []*Rule

	// HeadTimeout, when set, is how long a request head may take to
	// arrive once its first byte has (net/http's ReadHeaderTimeout): a
	// client that trickles a head, as a slowloris attack does, is closed
	// when it passes. Set it before serving.
	HeadTimeout time.Duration

	Requests, Failures, BadRequests atomic.Int64
}

// New returns a server with the given injection rules.
func New(rules ...*Rule) *Server {
	s := &Server{rules: rules}
	sort.Slice(s.rules, func(i, j int) bool { return len(s.rules[i].Prefix) > len(s.rules[j].Prefix) })
	return s
}

// conn is the server's state for one connection.
type conn struct {
	in       []byte
	pending  []*response // in request order
	closed   bool
	deadline bool // a head timeout is running
}

type response struct {
	data  []byte
	ready bool
	close bool
}

// OnOpen implements loop.Handler.
func (s *Server) OnOpen(c *loop.Conn) { c.Data = &conn{} }

// OnClose implements loop.Handler.
func (s *Server) OnClose(c *loop.Conn, err error) {
	if st, ok := c.Data.(*conn); ok {
		st.closed = true
	}
}

// OnData implements loop.Handler: parse every complete request in the
// buffer (pipelining) and queue their answers in order.
func (s *Server) OnData(c *loop.Conn, data []byte) {
	st := c.Data.(*conn)
	st.in = append(st.in, data...)
	off := 0
	for off < len(st.in) {
		req, n, err := parse(st.in[off:])
		if err == errIncomplete {
			break
		}
		if err != nil {
			st.pending = append(st.pending, &response{data: s.refuse(err), ready: true, close: true})
			off = len(st.in)
			break
		}
		off += n
		s.handle(c, st, req)
	}
	st.in = append(st.in[:0], st.in[off:]...)
	if s.HeadTimeout > 0 {
		// A head has begun and not ended: it has HeadTimeout to end.
		// Between requests there is no deadline (IdleTimeout's job).
		switch {
		case len(st.in) > 0 && !st.deadline:
			c.SetReadDeadline(time.Now().Add(s.HeadTimeout))
			st.deadline = true
		case len(st.in) == 0 && st.deadline:
			c.SetReadDeadline(time.Time{})
			st.deadline = false
		}
	}
	s.flush(c, st)
}

func (s *Server) handle(c *loop.Conn, st *conn, req Request) {
	s.Requests.Add(1)
	path, _, _ := strings.Cut(string(req.Target), "?")
	head := string(req.Method) == "HEAD"
	var rule *Rule
	for _, r := range s.rules {
		if strings.HasPrefix(path, r.Prefix) {
			rule = r
			break
		}
	}
	resp := &response{close: !req.KeepAlive, ready: true}
	switch {
	case rule != nil && rule.fails(rule.count.Add(1)):
		s.Failures.Add(1)
		resp.data = render(503, "injected failure\n", head, resp.close, textPlain, "Retry-After: 0")
	default:
		resp.data = answer(path, head, resp.close)
	}
	st.pending = append(st.pending, resp)
	if rule != nil && rule.Latency > 0 {
		resp.ready = false
		c.Loop().CallLater(rule.Latency, func() {
			resp.ready = true
			s.flush(c, st)
		})
	}
}

// flush writes the answers that are ready, in order; a later answer waits
// for an earlier, slower one.
func (s *Server) flush(c *loop.Conn, st *conn) {
	if st.closed {
		return
	}
	i := 0
	for ; i < len(st.pending) && st.pending[i].ready; i++ {
		r := st.pending[i]
		_, _ = c.Write(r.data)
		if r.close {
			st.pending = nil
			c.Close()
			return
		}
	}
	st.pending = append(st.pending[:0], st.pending[i:]...)
}

func page(path string) string {
	return fmt.Sprintf(`<!doctype html><html><head><title>loom serve %s</title></head><body><h1>%s</h1><a href="%s/a">a</a> <a href="%s/b">b</a></body></html>`+"\n",
		path, path, strings.TrimRight(path, "/"), strings.TrimRight(path, "/"))
}

// answer is the normal response to path: "ok" for /health, a page for the
// rest.
func answer(path string, head, close bool) []byte {
	if path == "/health" {
		return render(200, "ok\n", head, close, textPlain)
	}
	return render(200, page(path), head, close, "text/html; charset=utf-8")
}

// refuse answers a request that could not be parsed, and counts it.
func (s *Server) refuse(err error) []byte {
	pe := err.(*parseError)
	s.BadRequests.Add(1)
	return render(pe.status, pe.msg+"\n", false, true, textPlain)
}

const textPlain = "text/plain; charset=utf-8"

var statusText = map[int]string{200: "OK", 400: "Bad Request", 413: "Content Too Large", 431: "Request Header Fields Too Large",
	501: "Not Implemented", 503: "Service Unavailable", 505: "HTTP Version Not Supported"}

// render builds a response.
func render(status int, body string, head, close bool, contentType string, extra ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nContent-Length: %d\r\nContent-Type: %s\r\n", status, statusText[status], len(body), contentType)
	for _, h := range extra {
		b.WriteString(h)
		b.WriteString("\r\n")
	}
	if close {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("\r\n")
	if !head {
		b.WriteString(body)
	}
	return []byte(b.String())
}

// Answer parses the complete requests at the start of buf and returns their
// answers, how many bytes it used, and whether the connection must close.
// It ignores latency rules: it is for servers that are not on a loom loop
// (the benchmarks' gnet server) and answer at once.
func (s *Server) Answer(buf []byte) (out []byte, used int, closeAfter bool) {
	for used < len(buf) {
		req, n, err := parse(buf[used:])
		if err == errIncomplete {
			break
		}
		if err != nil {
			return append(out, s.refuse(err)...), len(buf), true
		}
		used += n
		s.Requests.Add(1)
		path, _, _ := strings.Cut(string(req.Target), "?")
		out = append(out, answer(path, string(req.Method) == "HEAD", !req.KeepAlive)...)
		if !req.KeepAlive {
			return out, used, true
		}
	}
	return out, used, false
}
