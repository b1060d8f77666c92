package loop

import (
	"net"
	"time"
)

// Conn is a TCP connection served by a loop: a transport, in asyncio's
// words. Its methods are loop only; from another goroutine, Post a
// function that calls them.
type Conn struct {
	l   *Loop
	fd  int
	h   Handler
	cfg *connConfig // shared by the connections of a listener

	backlog    []byte   // unsent bytes the socket would not take, from backlog[off:]
	off        int      // how much of backlog was sent
	segs       [][]byte // this turn's writes, staged in the loop's arena
	arenaGen   uint64   // which arena segs[len-1] is in, to extend it
	arenaStart int
	arenaEnd   int
	outBytes   int
	dirty      bool // queued for this turn's flush
	watchOut   bool // EPOLLOUT wanted: the socket was full
	paused     bool // OnPauseWriting sent, OnResumeWriting not yet
	readOff    bool // reading paused by the handler
	closing    bool // close once the output is flushed
	writeShut  bool // half-close once the output is flushed
	closed     bool
	connecting bool
	lastRead   int64 // UnixNano of the last read, with an idle timeout
	idleTimer  *Timer
	deadline   *Timer // SetReadDeadline's

	hd handle // the loop's entry for the descriptor: one allocation per connection

	// Data is for the handler: state it keeps per connection.
	Data any
}

func (l *Loop) newConn(fd int, h Handler, cfg *connConfig) *Conn {
	return &Conn{l: l, fd: fd, h: h, cfg: cfg}
}

func (c *Conn) open() {
	if c.cfg.idle > 0 {
		c.lastRead = time.Now().UnixNano()
		c.armIdle(c.cfg.idle)
	}
	if c.l.debug {
		start := time.Now()
		c.h.OnOpen(c)
		c.l.checkSlow(start, "OnOpen")
		return
	}
	c.h.OnOpen(c)
}

func (c *Conn) armIdle(d time.Duration) {
	c.idleTimer = c.l.CallLater(d, c.checkIdle)
}

// checkIdle closes an idle connection, or re-arms for the time left: one
// timer per connection, moved only when it fires, however busy it is.
func (c *Conn) checkIdle() {
	if c.closed {
		return
	}
	if left := c.cfg.idle - time.Duration(time.Now().UnixNano()-c.lastRead); left > 0 {
		c.armIdle(left)
		return
	}
	c.finish(ErrIdle)
}

// SetReadDeadline closes the connection with ErrReadDeadline if t passes
// before the deadline is moved or cleared with a zero t (loop only). Unlike
// IdleTimeout, which closes a connection that has been quiet for a while,
// a read deadline is absolute and reading does not move it: set it when
// the handler waits for something ("the request head within 5s"), clear
// it once that has come. A t already past closes the connection on the
// loop's next turn.
func (c *Conn) SetReadDeadline(t time.Time) {
	c.l.checkThread("Conn.SetReadDeadline")
	if c.deadline != nil {
		c.deadline.Cancel()
		c.deadline = nil
	}
	if t.IsZero() || c.closed {
		return
	}
	c.deadline = c.l.CallAt(t, func() { c.finish(ErrReadDeadline) })
}

// LocalAddr returns the connection's local address.
func (c *Conn) LocalAddr() net.Addr { return localAddr(c.fd) }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return remoteAddr(c.fd) }

// Loop returns the connection's loop.
func (c *Conn) Loop() *Loop { return c.l }

// Buffered returns how many written bytes are not yet sent.
func (c *Conn) Buffered() int { return c.outBytes }

// Write queues b to be sent; the loop sends everything written in one turn
// with a single writev. b is copied, so the caller may reuse it. Above the
// high watermark a FlowHandler is told to pause. After Close or
// CloseWrite, Write returns ErrConnClosed.
func (c *Conn) Write(b []byte) (int, error) {
	c.l.checkThread("Conn.Write")
	if c.closed || c.closing || c.writeShut {
		return 0, ErrConnClosed
	}
	n := len(b)
	if n == 0 {
		return 0, nil
	}
	l := c.l
	if len(l.arena)+n > cap(l.arena) {
		// Segments already handed out keep the old array alive; the
		// new writes go to a fresh one.
		l.arena = make([]byte, 0, max(2*cap(l.arena), arenaMin, n))
		l.arenaGen++
	}
	start := len(l.arena)
	l.arena = append(l.arena, b...)
	end := len(l.arena)
	if k := len(c.segs); k > 0 && c.arenaGen == l.arenaGen && c.arenaEnd == start {
		c.segs[k-1] = l.arena[c.arenaStart:end:end] // the same writer again: extend
	} else {
		c.segs = append(c.segs, l.arena[start:end:end])
		c.arenaStart = start
	}
	c.arenaGen, c.arenaEnd = l.arenaGen, end
	c.outBytes += n
	if !c.dirty {
		c.dirty = true
		l.dirty = append(l.dirty, c)
	}
	if !c.paused && c.outBytes > c.cfg.high {
		if fh, ok := c.h.(FlowHandler); ok {
			c.paused = true
			fh.OnPauseWriting(c)
		}
	}
	return n, nil
}

// arenaMin is the smallest staging arena a loop keeps. Writes of one turn
// are staged in the loop's arena, not in per-connection buffers: a
// connection that is answered within the turn never owns a buffer, which
// keeps idle connections small and saves an allocation per write. Only
// what the socket would not take (a slow reader) is copied into the
// connection's own backlog.
const arenaMin = 64 << 10

// keep moves c's staged segments into its own backlog, before the loop
// reuses its arena.
func (c *Conn) keep() {
	for i, seg := range c.segs {
		c.backlog = append(c.backlog, seg...)
		c.segs[i] = nil
	}
	c.segs = c.segs[:0]
}

// PauseReading stops reading from the connection until ResumeReading: the
// peer's writes then back up into its socket buffers (read flow control).
func (c *Conn) PauseReading() {
	c.l.checkThread("Conn.PauseReading")
	if !c.readOff && !c.closed {
		c.readOff = true
		c.updateInterest()
	}
}

// ResumeReading undoes PauseReading.
func (c *Conn) ResumeReading() {
	c.l.checkThread("Conn.ResumeReading")
	if c.readOff && !c.closed {
		c.readOff = false
		c.updateInterest()
	}
}

func (c *Conn) updateInterest() {
	_ = c.l.p.modify(c.fd, !c.readOff && !c.connecting, c.watchOut || c.connecting)
}

// Close closes the connection once what was written has been sent; OnClose
// follows with a nil error. Calling it again does nothing.
func (c *Conn) Close() {
	c.l.checkThread("Conn.Close")
	if c.closed || c.closing {
		return
	}
	c.closing = true
	if c.outBytes == 0 {
		c.finish(nil)
	}
}

// CloseWrite half-closes the connection once what was written has been
// sent, like asyncio's write_eof: the peer reads end of stream, and may
// still send; OnData goes on until it closes its side. Write fails after
// it.
func (c *Conn) CloseWrite() {
	c.l.checkThread("Conn.CloseWrite")
	if c.closed || c.closing || c.writeShut {
		return
	}
	c.writeShut = true
	if c.outBytes == 0 {
		_ = shutdownWrite(c.fd)
	}
}

// Abort closes the connection at once, dropping unsent bytes; OnClose
// follows with ErrConnClosed.
func (c *Conn) Abort() {
	c.l.checkThread("Conn.Abort")
	c.finish(ErrConnClosed)
}

func (c *Conn) onEvent(readable, writable, hangup bool) {
	if c.connecting {
		if writable || hangup {
			c.connected()
		}
		return
	}
	if (readable || hangup) && !c.readOff {
		c.read()
	}
	if writable && !c.closed {
		c.flush()
	}
}

func (c *Conn) connected() {
	if err := socketError(c.fd); err != nil {
		c.finish(err)
		return
	}
	c.connecting = false
	c.updateInterest()
	c.open()
}

// read reads once: the loop is level-triggered, so more data comes back on
// the next turn, and one busy connection cannot hold the loop.
func (c *Conn) read() {
	n, err := readFD(c.fd, c.l.readBuf)
	switch {
	case n > 0:
		c.l.m.bytesIn.Add(uint64(n))
		if c.cfg.idle > 0 {
			c.lastRead = c.l.now().UnixNano()
		}
		if c.l.debug {
			start := time.Now()
			c.h.OnData(c, c.l.readBuf[:n])
			c.l.checkSlow(start, "OnData")
		} else {
			c.h.OnData(c, c.l.readBuf[:n])
		}
	case err == nil: // end of stream: the peer closed or half-closed
		c.readOff = true
		if c.outBytes == 0 {
			c.finish(nil)
			return
		}
		c.closing = true // send what is queued, then close
		c.updateInterest()
	case isAgain(err):
	default:
		c.finish(err)
	}
}

// flush sends the backlog and the staged segments with one writev.
func (c *Conn) flush() {
	c.dirty = false
	if c.closed || c.outBytes == 0 {
		return
	}
	l := c.l
	iov := l.iov[:0]
	if len(c.backlog) > c.off {
		iov = append(iov, c.backlog[c.off:])
	}
	iov = append(iov, c.segs...)
	if len(iov) > 1024 {
		iov = iov[:1024]
	}
	l.m.writeCalls.Add(1) // before the bytes can reach the peer
	n, err := writevFD(c.fd, iov)
	clear(iov)
	l.iov = iov[:0]
	if err != nil && !isAgain(err) {
		c.finish(err)
		return
	}
	if n > 0 {
		l.m.bytesOut.Add(uint64(n))
		c.outBytes -= n
		if k := min(n, len(c.backlog)-c.off); k > 0 {
			c.off += k
			n -= k
		}
		sent := 0 // whole segments written
		for n > 0 {
			if n >= len(c.segs[sent]) {
				n -= len(c.segs[sent])
				c.segs[sent] = nil
				sent++
				continue
			}
			c.segs[sent] = c.segs[sent][n:]
			n = 0
		}
		// Keep the slice's array: a connection answered every turn would
		// otherwise allocate a new one each time.
		rest := copy(c.segs, c.segs[sent:])
		clear(c.segs[rest:])
		c.segs = c.segs[:rest]
	}
	if c.off == len(c.backlog) {
		c.backlog, c.off = c.backlog[:0], 0
		if cap(c.backlog) > 64<<10 {
			c.backlog = nil // a burst is over: give its memory back
		}
	}
	if len(c.segs) > 0 {
		c.keep() // the socket is full: the rest waits in c's own backlog
	} else {
		c.segs = c.segs[:0]
	}
	if want := c.outBytes > 0; want != c.watchOut {
		c.watchOut = want
		c.updateInterest()
	}
	if c.paused && c.outBytes <= c.cfg.low {
		c.paused = false
		c.h.(FlowHandler).OnResumeWriting(c)
	}
	if c.outBytes == 0 && c.writeShut && !c.closed {
		_ = shutdownWrite(c.fd)
	}
	if c.closing && c.outBytes == 0 && !c.closed {
		c.finish(nil)
	}
}

// finish closes the socket and tells the handler, once.
func (c *Conn) finish(err error) {
	if c.closed {
		return
	}
	c.closed = true
	_ = c.l.p.remove(c.fd)
	c.l.fds.del(c.fd)
	closeFD(c.fd)
	c.l.m.conns.Add(-1)
	if c.idleTimer != nil {
		c.idleTimer.Cancel()
	}
	if c.deadline != nil {
		c.deadline.Cancel()
	}
	c.segs, c.backlog, c.outBytes = nil, nil, 0
	if c.l.debug {
		start := time.Now()
		c.h.OnClose(c, err)
		c.l.checkSlow(start, "OnClose")
		return
	}
	c.h.OnClose(c, err)
}

// flushWrites sends what each connection was given this turn. A flush may
// resume a producer that writes again; those writes go out in another
// round, a few rounds at most, then on the next turn.
func (l *Loop) flushWrites() {
	for range 4 {
		if len(l.dirty) == 0 {
			break
		}
		batch := l.dirty
		l.dirty = l.dirtySpare[:0]
		for i, c := range batch {
			batch[i] = nil
			if c.dirty {
				c.flush()
			}
		}
		l.dirtySpare = batch[:0]
	}
	// Connections still waiting for a flush keep their bytes; then the
	// arena is free again.
	for _, c := range l.dirty {
		c.keep()
	}
	l.arena = l.arena[:0]
	l.arenaGen++
}
