package loop

import (
	"fmt"
	"net"
	"time"

	"loom"
)

// Handler receives a connection's events on its loop, like an asyncio
// Protocol. None of its methods may block: blocking work goes through
// RunInExecutor.
type Handler interface {
	// OnOpen is called once the connection is established.
	OnOpen(c *Conn)
	// OnData is called with bytes read from the connection. data is only
	// valid during the call: copy what must outlive it.
	OnData(c *Conn, data []byte)
	// OnClose is called once, when the connection is closed: err is nil
	// for a clean close by either side, ErrIdle, ErrReadDeadline,
	// ErrLoopClosed, or the I/O error. A dial that fails calls OnClose
	// without OnOpen.
	OnClose(c *Conn, err error)
}

// FlowHandler is implemented by a Handler that wants asyncio's write flow
// control: OnPauseWriting when the connection's unsent bytes rise above
// the high watermark (the peer reads slower than the handler writes), and
// OnResumeWriting when they fall to the low watermark. A handler that
// keeps writing while paused grows memory without bound.
type FlowHandler interface {
	OnPauseWriting(c *Conn)
	OnResumeWriting(c *Conn)
}

// ConnOption configures the connections of Listen and Dial.
type ConnOption func(*connConfig) error

type connConfig struct {
	high, low int
	idle      time.Duration
	reusePort bool
}

func defaultConnConfig() connConfig { return connConfig{high: 64 << 10, low: 16 << 10} }

// Watermarks sets the write flow-control thresholds: pause above high
// unsent bytes, resume at low (0 ≤ low ≤ high). The defaults are 64 KiB
// and 16 KiB, as in asyncio.
func Watermarks(high, low int) ConnOption {
	return func(c *connConfig) error {
		if low < 0 || high < low {
			return fmt.Errorf("%w: watermarks high %d, low %d; need 0 ≤ low ≤ high", loom.ErrInvalidArgument, high, low)
		}
		c.high, c.low = high, low
		return nil
	}
}

// IdleTimeout closes a connection with ErrIdle when nothing has been read
// from it for d.
func IdleTimeout(d time.Duration) ConnOption {
	return func(c *connConfig) error {
		if d <= 0 {
			return fmt.Errorf("%w: idle timeout %v; need more than 0", loom.ErrInvalidArgument, d)
		}
		c.idle = d
		return nil
	}
}

// ReusePort sets SO_REUSEPORT on a listener, so that several loops can
// listen on the same address and the kernel spreads connections over them
// (Group does this).
func ReusePort() ConnOption {
	return func(c *connConfig) error { c.reusePort = true; return nil }
}

func buildConn(where string, opts []ConnOption) (connConfig, error) {
	c := defaultConnConfig()
	for _, o := range opts {
		if o == nil {
			return c, fmt.Errorf("%s: %w: nil option", where, loom.ErrInvalidArgument)
		}
		if err := o(&c); err != nil {
			return c, fmt.Errorf("%s: %w", where, err)
		}
	}
	return c, nil
}

// Listener accepts TCP connections on a loop.
type Listener struct {
	l      *Loop
	fd     int
	h      Handler
	cfg    connConfig
	addr   *net.TCPAddr
	closed bool
	// spread, when set, is the group whose loops take the accepted
	// connections in turn (a Group without load-balanced SO_REUSEPORT).
	spread []*Loop
	next   int
}

// Listen listens on addr ("127.0.0.1:8080", ":0") and serves each
// connection accepted with h on the loop (loop only, or before Run).
func (l *Loop) Listen(addr string, h Handler, opts ...ConnOption) (*Listener, error) {
	l.checkThread("Listen")
	if h == nil {
		return nil, fmt.Errorf("loop.Listen: %w: nil handler", loom.ErrInvalidArgument)
	}
	cfg, err := buildConn("loop.Listen", opts)
	if err != nil {
		return nil, err
	}
	if l.state.Load() >= stateStopping {
		return nil, ErrLoopClosed
	}
	fd, bound, err := listenTCP(addr, cfg.reusePort)
	if err != nil {
		return nil, fmt.Errorf("loop.Listen %s: %w", addr, err)
	}
	ln := &Listener{l: l, fd: fd, h: h, cfg: cfg, addr: bound}
	if err := l.p.add(fd, true, false); err != nil {
		closeFD(fd)
		return nil, fmt.Errorf("loop.Listen %s: %w", addr, err)
	}
	l.fds.set(fd, &handle{ln: ln, read: true})
	return ln, nil
}

// Addr returns the address the listener is bound to.
func (ln *Listener) Addr() *net.TCPAddr { return ln.addr }

// Close stops accepting (loop only); open connections stay.
func (ln *Listener) Close() {
	ln.l.checkThread("Listener.Close")
	ln.close()
}

func (ln *Listener) close() {
	if ln.closed {
		return
	}
	ln.closed = true
	_ = ln.l.p.remove(ln.fd)
	ln.l.fds.del(ln.fd)
	closeFD(ln.fd)
}

// accept takes the waiting connections, a bounded number per turn so that
// a flood of connects cannot starve the rest of the loop.
func (ln *Listener) accept() {
	for range 128 {
		fd, err := accept(ln.fd)
		if err != nil {
			// EAGAIN: none left. Anything else (EMFILE, ECONNABORTED) is
			// left for the next turn: the listener stays.
			return
		}
		ln.l.m.accepted.Add(1)
		to := ln.l
		if len(ln.spread) > 0 {
			to = ln.spread[ln.next%len(ln.spread)]
			ln.next++
		}
		if to == ln.l {
			to.adopt(fd, ln.h, &ln.cfg)
			continue
		}
		h, cfg := ln.h, &ln.cfg
		if to.Post(func() { to.adopt(fd, h, cfg) }) != nil {
			closeFD(fd) // that loop has stopped
		}
	}
}

// adopt serves an accepted connection on l (loop only).
func (l *Loop) adopt(fd int, h Handler, cfg *connConfig) {
	if l.state.Load() >= stateStopping {
		closeFD(fd)
		return
	}
	c := l.newConn(fd, h, cfg)
	if err := l.p.add(fd, true, false); err != nil {
		closeFD(fd)
		return
	}
	c.hd = handle{conn: c, read: true}
	l.fds.set(fd, &c.hd)
	l.m.conns.Add(1)
	c.open()
}

// Dial connects to addr and serves the connection with h on the loop
// (loop only, or before Run): OnOpen when connected, or OnClose with the
// error if the connection fails.
func (l *Loop) Dial(addr string, h Handler, opts ...ConnOption) error {
	l.checkThread("Dial")
	if h == nil {
		return fmt.Errorf("loop.Dial: %w: nil handler", loom.ErrInvalidArgument)
	}
	cfg, err := buildConn("loop.Dial", opts)
	if err != nil {
		return err
	}
	if l.state.Load() >= stateStopping {
		return ErrLoopClosed
	}
	fd, err := dialTCP(addr)
	if err != nil {
		return fmt.Errorf("loop.Dial %s: %w", addr, err)
	}
	c := l.newConn(fd, h, &cfg)
	c.connecting = true
	if err := l.p.add(fd, false, true); err != nil {
		closeFD(fd)
		return fmt.Errorf("loop.Dial %s: %w", addr, err)
	}
	c.hd = handle{conn: c, write: true}
	l.fds.set(fd, &c.hd)
	l.m.conns.Add(1)
	return nil
}
