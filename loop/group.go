package loop

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"

	"loom"
)

// Group is several loops, one per core by default, that share the work. On
// Linux a server listens on every loop of the group with SO_REUSEPORT, and
// the kernel spreads the connections over them. Elsewhere (macOS and most
// BSDs, whose SO_REUSEPORT does not balance) the first loop listens alone
// and hands the connections it accepts to the loops in turn. Each loop
// runs on its own goroutine and thread; a connection stays on the loop it
// was given.
type Group struct {
	loops []*Loop
	// oneAcceptor makes Listen use one listener and round-robin, as on
	// the systems without a balancing SO_REUSEPORT (tests set it on Linux).
	oneAcceptor bool
}

// NewGroup returns n loops (0: GOMAXPROCS), each named name-i and
// configured with opts.
func NewGroup(name string, n int, opts ...Option) (*Group, error) {
	if n < 0 {
		return nil, fmt.Errorf("loop.NewGroup: %w: %d loops", loom.ErrInvalidArgument, n)
	}
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	g := &Group{oneAcceptor: !reusePortBalances}
	for i := range n {
		l, err := New(append([]Option{WithName(fmt.Sprintf("%s-%d", name, i))}, opts...)...)
		if err != nil {
			for _, l := range g.loops {
				l.Stop()
				l.shutdownUnstarted()
			}
			return nil, err
		}
		g.loops = append(g.loops, l)
	}
	return g, nil
}

// Loops returns the group's loops.
func (g *Group) Loops() []*Loop { return g.loops }

// Listen listens on addr on every loop of the group (before Run). With port
// 0, the first loop picks the port and the others share it. It returns the
// bound address.
func (g *Group) Listen(addr string, h Handler, opts ...ConnOption) (*net.TCPAddr, error) {
	if g.oneAcceptor {
		ln, err := g.loops[0].Listen(addr, h, opts...)
		if err != nil {
			return nil, err
		}
		ln.spread = g.loops
		return ln.Addr(), nil
	}
	opts = append([]ConnOption{ReusePort()}, opts...)
	var bound *net.TCPAddr
	for _, l := range g.loops {
		a := addr
		if bound != nil {
			a = bound.String()
		}
		ln, err := l.Listen(a, h, opts...)
		if err != nil {
			return nil, err
		}
		bound = ln.Addr()
	}
	return bound, nil
}

// Run runs every loop until ctx ends or one of them fails, and returns
// once all have stopped: the first failure, or context.Cause(ctx).
func (g *Group) Run(ctx context.Context) error {
	if ctx == nil {
		return fmt.Errorf("loop.Group.Run: %w: nil context", loom.ErrInvalidArgument)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	errs := make([]error, len(g.loops))
	for i, l := range g.loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.Run(ctx)
			cancel(errs[i])
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Metrics returns each loop's figures.
func (g *Group) Metrics() []Metrics {
	out := make([]Metrics, len(g.loops))
	for i, l := range g.loops {
		out[i] = l.Metrics()
	}
	return out
}
