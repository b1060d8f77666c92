package httpd

import (
	"bytes"
	"fmt"
	"html"
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
//
// What one peer can make it hold is bounded. Answers go out through the
// connection's write flow control: once a connection's unsent answers pass
// its high watermark (loop.Watermarks), the server stops reading and
// parsing that connection until they fall to the low one, and at most
// MaxPipelined answers wait per connection, so a client that pipelines
// requests and never reads its answers costs a watermark's worth of
// memory, not gigabytes; WriteTimeout closes it if it stays that way.
// Partial requests (heads and bodies still arriving) count against
// MaxBuffered across all the server's connections.
type Server struct {
	rules []*Rule

	// HeadTimeout, when set, is how long a request (head and body) may
	// take to arrive once its first byte has (net/http's
	// ReadHeaderTimeout, stretched to the body): a client that trickles
	// a request, as a slowloris attack does, is closed when it passes.
	// Set it before serving.
	HeadTimeout time.Duration

	// WriteTimeout, when set, is how long a connection may keep its
	// reading paused because its peer does not read the answers (unsent
	// bytes above the high watermark): then it is closed and its unsent
	// answers dropped, and Stalled counts it. Set it before serving.
	WriteTimeout time.Duration

	// MaxBuffered bounds the bytes of partial requests held across all
	// connections; 0 means DefaultMaxBuffered. A read that would pass it
	// is answered 503 with Connection: close, and counted in Overloaded.
	// Set it before serving.
	MaxBuffered int64

	Requests, Failures, BadRequests atomic.Int64
	// Stalled counts connections closed by WriteTimeout; Overloaded,
	// those refused because of MaxBuffered.
	Stalled, Overloaded atomic.Int64

	buffered atomic.Int64 // bytes of partial requests held, all connections
}

// DefaultMaxBuffered is MaxBuffered's default: 32 MiB, 32 requests at the
// largest body the parser takes (1 MiB), or thousands of partial heads.
const DefaultMaxBuffered = 32 << 20

// MaxPipelined is how many answers may wait per connection, not yet sent
// because an earlier one is slower (a latency rule) or not yet handed to
// the socket: past it the server stops reading the connection until one
// goes out.
const MaxPipelined = 64

// requestsPerTurn is how many requests of one connection are parsed and
// answered in one turn of its loop. One read can hold a thousand pipelined
// requests; answering them all at once would make every other connection
// on the loop wait, so the rest waits for the next turn, with reading
// paused meanwhile so that it does not pile up.
const requestsPerTurn = 64

// New returns a server with the given injection rules.
func New(rules ...*Rule) *Server {
	s := &Server{rules: rules}
	sort.Slice(s.rules, func(i, j int) bool { return len(s.rules[i].Prefix) > len(s.rules[j].Prefix) })
	return s
}

// Buffered returns how many bytes of partial requests the server holds.
func (s *Server) Buffered() int64 { return s.buffered.Load() }

// conn is the server's state for one connection.
type conn struct {
	in          []byte
	pending     []*response // in request order
	closed      bool
	done        bool        // an answer with Connection: close went out: read no more requests
	deadline    bool        // a head timeout is running
	writePaused bool        // unsent answers above the high watermark
	readOff     bool        // reading paused, for writePaused, MaxPipelined or more
	more        bool        // complete requests left for the next turn (requestsPerTurn)
	stall       *loop.Timer // WriteTimeout's, while writePaused
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
		s.buffered.Add(-int64(len(st.in)))
		st.in, st.pending = nil, nil
		if st.stall != nil {
			st.stall.Cancel()
		}
	}
}

// OnPauseWriting implements loop.FlowHandler: the peer does not keep up
// with the answers, so stop reading its requests.
func (s *Server) OnPauseWriting(c *loop.Conn) {
	st := c.Data.(*conn)
	st.writePaused = true
	if s.WriteTimeout > 0 {
		st.stall = c.Loop().CallLater(s.WriteTimeout, func() {
			if !st.closed {
				s.Stalled.Add(1)
				c.Abort()
			}
		})
	}
	s.updateReading(c, st)
}

// OnResumeWriting implements loop.FlowHandler: the peer has read enough;
// parse what is buffered and read again.
func (s *Server) OnResumeWriting(c *loop.Conn) {
	st := c.Data.(*conn)
	st.writePaused = false
	if st.stall != nil {
		st.stall.Cancel()
		st.stall = nil
	}
	s.process(c, st)
}

// OnData implements loop.Handler: parse every complete request in the
// buffer (pipelining) and queue their answers in order.
func (s *Server) OnData(c *loop.Conn, data []byte) {
	st := c.Data.(*conn)
	limit := s.MaxBuffered
	if limit <= 0 {
		limit = DefaultMaxBuffered
	}
	if s.buffered.Add(int64(len(data))) > limit {
		s.buffered.Add(-int64(len(data) + len(st.in)))
		s.Overloaded.Add(1)
		st.in = nil
		st.pending = append(st.pending, &response{data: render(503, "server busy: too many partial requests buffered\n", false, true, textPlain, "Retry-After: 1"), ready: true, close: true})
		s.flush(c, st)
		return
	}
	if len(st.in) > 0 || st.closed {
		st.in = append(st.in, data...)
		s.process(c, st)
		return
	}
	// Nothing is buffered: parse the loop's read buffer where it is, and
	// keep only what is left of it (a partial request) in the
	// connection's own buffer, since the loop reuses its buffer.
	own := st.in
	st.in = data
	s.process(c, st)
	if !st.closed {
		st.in = append(own, st.in...)
	}
}

// process parses and answers the complete requests buffered, while the
// connection may take more answers, then sets reading and the head
// deadline to match.
func (s *Server) process(c *loop.Conn, st *conn) {
	off, handled := 0, 0
	for off < len(st.in) && !st.closed && !st.done && !st.writePaused && len(st.pending) < MaxPipelined {
		if handled == requestsPerTurn {
			if !st.more {
				st.more = true
				c.Loop().CallSoon(func() { st.more = false; s.process(c, st) })
			}
			break
		}
		handled++
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
		// Hand the answer to the connection now: its write flow
		// control says, through OnPauseWriting, when to stop.
		s.flush(c, st)
	}
	if st.closed {
		return
	}
	if off > 0 {
		s.buffered.Add(-int64(off))
		st.in = append(st.in[:0], st.in[off:]...)
		if len(st.in) == 0 && cap(st.in) > 64<<10 {
			st.in = nil // a large body is done: give its memory back
		}
	}
	s.flush(c, st)
	s.updateReading(c, st)
}

// updateReading pauses or resumes reading the connection, and starts or
// stops the head deadline: it runs while a request is partly buffered
// and the server is reading, not while it holds complete requests back.
func (s *Server) updateReading(c *loop.Conn, st *conn) {
	if st.closed {
		return
	}
	off := st.writePaused || len(st.pending) >= MaxPipelined || st.more
	if off != st.readOff {
		st.readOff = off
		if off {
			c.PauseReading()
		} else {
			c.ResumeReading()
		}
	}
	if s.HeadTimeout > 0 {
		want := len(st.in) > 0 && !off
		switch {
		case want && !st.deadline:
			c.SetReadDeadline(time.Now().Add(s.HeadTimeout))
			st.deadline = true
		case !want && st.deadline:
			c.SetReadDeadline(time.Time{})
			st.deadline = false
		}
	}
}

func (s *Server) handle(c *loop.Conn, st *conn, req Request) {
	s.Requests.Add(1)
	path, _, _ := bytes.Cut(req.Target, []byte("?")) // not a string: the common answers need no copy
	head := string(req.Method) == "HEAD"
	var rule *Rule
	for _, r := range s.rules {
		if bytes.HasPrefix(path, []byte(r.Prefix)) {
			rule = r
			break
		}
	}
	closing := !req.KeepAlive
	var data []byte
	switch {
	case rule != nil && rule.fails(rule.count.Add(1)):
		s.Failures.Add(1)
		data = render(503, "injected failure\n", head, closing, textPlain, "Retry-After: 0")
	default:
		data = answer(path, head, closing)
	}
	delayed := rule != nil && rule.Latency > 0
	if !delayed && len(st.pending) == 0 {
		// Nothing waits ahead of it: the answer goes to the connection
		// now, with no response record.
		s.send(c, st, data, closing)
		return
	}
	resp := &response{data: data, close: closing, ready: true}
	st.pending = append(st.pending, resp)
	if delayed {
		resp.ready = false
		c.Loop().CallLater(rule.Latency, func() {
			resp.ready = true
			s.flush(c, st)
			if st.readOff && !st.writePaused {
				s.process(c, st) // MaxPipelined may have held reading back
			}
		})
	}
}

// flush writes the answers that are ready, in order; a later answer waits
// for an earlier, slower one. Answers sent may let reading resume.
func (s *Server) flush(c *loop.Conn, st *conn) {
	if st.closed {
		return
	}
	i := 0
	for ; i < len(st.pending) && st.pending[i].ready; i++ {
		r := st.pending[i]
		if !s.send(c, st, r.data, r.close) {
			return
		}
	}
	if i > 0 {
		n := copy(st.pending, st.pending[i:])
		clear(st.pending[n:])
		st.pending = st.pending[:n]
	}
}

// send writes one answer; an answer that closes the connection drops
// the answers after it, closes, and send returns false.
func (s *Server) send(c *loop.Conn, st *conn, data []byte, closing bool) bool {
	_, _ = c.Write(data)
	if closing {
		st.pending, st.done = nil, true
		c.Close()
		return false
	}
	return true
}

// page is the HTML answer for path. The path is the peer's: it is escaped
// wherever it appears, in text and in attributes, so that a request for
// /<script>... cannot put markup in the page (reflected XSS).
func page(path string) string {
	text := html.EscapeString(path)
	base := html.EscapeString(strings.TrimRight(path, "/"))
	return fmt.Sprintf(`<!doctype html><html><head><title>loom serve %s</title></head><body><h1>%s</h1><a href="%s/a">a</a> <a href="%s/b">b</a></body></html>`+"\n",
		text, text, base, base)
}

// answer is the normal response to path: "ok" for /health, a page for the
// rest.
func answer(path []byte, head, close bool) []byte {
	if string(path) == "/health" {
		return healthAnswers[b2i(head)][b2i(close)]
	}
	return render(200, page(string(path)), head, close, "text/html; charset=utf-8")
}

// healthAnswers are /health's answers, made once, by [head][close]: the
// loop copies what it writes, so they are shared.
var healthAnswers = func() (a [2][2][]byte) {
	for h := range 2 {
		for c := range 2 {
			a[h][c] = render(200, "ok\n", h == 1, c == 1, textPlain)
		}
	}
	return a
}()

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
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
	b := make([]byte, 0, 96+len(contentType)+len(body))
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, statusText[status]...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\nContent-Type: "...)
	b = append(b, contentType...)
	b = append(b, "\r\n"...)
	for _, h := range extra {
		b = append(b, h...)
		b = append(b, "\r\n"...)
	}
	if close {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, "\r\n"...)
	if !head {
		b = append(b, body...)
	}
	return b
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
		path, _, _ := bytes.Cut(req.Target, []byte("?"))
		out = append(out, answer(path, string(req.Method) == "HEAD", !req.KeepAlive)...)
		if !req.KeepAlive {
			return out, used, true
		}
	}
	return out, used, false
}
