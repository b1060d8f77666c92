package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/panjf2000/gnet/v2"

	"loom/internal/httpd"
	"loom/loop"
)

// HTTP servers answering GET /health with "ok": net/http, gnet v2 with
// loom's parser, and loom serve's loop server.
var httpServers = []struct {
	name  string
	start func() (string, func(), error)
}{
	{"nethttp", func() (string, func(), error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, "ok\n")
		})}
		go srv.Serve(ln)
		return ln.Addr().String(), func() { srv.Close() }, nil
	}},
	{"gnet", func() (string, func(), error) {
		addr, err := freePort()
		if err != nil {
			return "", nil, err
		}
		h := &gnetHTTP{srv: httpd.New(), eng: make(chan gnet.Engine, 1)}
		errc := make(chan error, 1)
		go func() {
			errc <- gnet.Run(h, "tcp://"+addr, gnet.WithMulticore(true), gnet.WithReusePort(true), gnet.WithLogger(quietLog{}))
		}()
		select {
		case eng := <-h.eng:
			return addr, func() { _ = eng.Stop(context.Background()); <-errc }, nil
		case err := <-errc:
			return "", nil, err
		}
	}},
	{"loom", func() (string, func(), error) {
		g, err := loop.NewGroup("serve", 0)
		if err != nil {
			return "", nil, err
		}
		addr, err := g.Listen("127.0.0.1:0", httpd.New())
		if err != nil {
			return "", nil, err
		}
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- g.Run(ctx) }()
		return addr.String(), func() { cancel(); <-errc }, nil
	}},
}

type gnetHTTP struct {
	gnet.BuiltinEventEngine
	srv *httpd.Server
	eng chan gnet.Engine
}

func (g *gnetHTTP) OnBoot(eng gnet.Engine) gnet.Action { g.eng <- eng; return gnet.None }
func (g *gnetHTTP) OnTraffic(c gnet.Conn) gnet.Action {
	buf, _ := c.Peek(-1)
	out, used, closeAfter := g.srv.Answer(buf)
	_, _ = c.Discard(used)
	if len(out) > 0 {
		_, _ = c.Write(out)
	}
	if closeAfter {
		return gnet.Close
	}
	return gnet.None
}

// BenchmarkServe is b.N keep-alive GET /health requests over 50
// connections, one at a time per connection, from a raw HTTP/1.1 client in
// the same process (ns per request).
func BenchmarkServe(b *testing.B) {
	const conns = 50
	for _, srv := range httpServers {
		b.Run("impl="+srv.name, func(b *testing.B) {
			addr, stop, err := srv.start()
			if err != nil {
				b.Fatal(err)
			}
			defer stop()
			cs := make([]net.Conn, conns)
			for i := range cs {
				if cs[i], err = net.Dial("tcp", addr); err != nil {
					b.Fatal(err)
				}
			}
			defer func() {
				for _, c := range cs {
					c.Close()
				}
			}()
			req := []byte("GET /health HTTP/1.1\r\nHost: bench\r\n\r\n")
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for i, c := range cs {
				n := b.N / conns
				if i < b.N%conns {
					n++
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := bufio.NewReader(c)
					for range n {
						if _, err := c.Write(req); err != nil {
							b.Error(err)
							return
						}
						if err := readResponse(r); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
		})
	}
}

// readResponse reads one response with a Content-Length body.
func readResponse(r *bufio.Reader) error {
	length := -1
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" {
			break
		}
		if v, ok := strings.CutPrefix(strings.ToLower(line), "content-length:"); ok {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if length < 0 {
		return fmt.Errorf("no content length")
	}
	_, err := r.Discard(length)
	return err
}
