package pool

import (
	"fmt"
	"time"

	"loom"
)

// Option configures a Pool.
type Option func(*config) error

type config struct {
	name        string
	size        int
	sizeSet     bool
	blocking    bool
	queue       int
	idleTimeout time.Duration
	// process pools only
	maxTasks int
	memLimit int64
}

// blockingSize is the default number of workers of a pool for blocking I/O:
// such tasks mostly wait, so many more of them than cores can run at once.
const blockingSize = 256

func (c *config) apply(opts []Option) error {
	for _, o := range opts {
		if o == nil {
			return fmt.Errorf("pool.New: %w: nil option", loom.ErrInvalidArgument)
		}
		if err := o(c); err != nil {
			return fmt.Errorf("pool.New: %w", err)
		}
	}
	if c.blocking && !c.sizeSet {
		c.size = blockingSize
	}
	return nil
}

// WithSize sets the most tasks the pool runs at once (its workers), at
// least 1. The default is GOMAXPROCS, right for CPU-bound work; see
// ForBlocking.
func WithSize(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("%w: size %d; need at least 1", loom.ErrInvalidArgument, n)
		}
		c.size, c.sizeSet = n, true
		return nil
	}
}

// ForBlocking makes the default size 256 instead of GOMAXPROCS, for tasks
// that mostly wait on I/O or on blocking calls (asyncio's thread pool).
// WithSize still overrides it.
func ForBlocking() Option {
	return func(c *config) error { c.blocking = true; return nil }
}

// WithQueueSize bounds how many tasks may wait for a worker, at least 0.
// When the queue is full, Submit waits and TrySubmit returns ErrPoolFull.
// With 0, a task is only accepted when a worker can start it. The default
// is no bound.
func WithQueueSize(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("%w: queue size %d is negative", loom.ErrInvalidArgument, n)
		}
		c.queue = n
		return nil
	}
}

// WithIdleTimeout sets how long a worker with nothing to do waits before it
// exits (default 5s); workers start again on demand.
func WithIdleTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: idle timeout %v; need more than 0", loom.ErrInvalidArgument, d)
		}
		c.idleTimeout = d
		return nil
	}
}

// WithMaxTasksPerChild makes a ProcessPool replace each child process after
// it has run n tasks (at least 1), like Python's max_tasks_per_child: a
// bound on what leaks or fragmentation in the child can grow to. The
// default is no bound. A goroutine Pool refuses this option.
func WithMaxTasksPerChild(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("%w: max tasks per child %d; need at least 1", loom.ErrInvalidArgument, n)
		}
		c.maxTasks = n
		return nil
	}
}

// WithMemoryLimit makes a ProcessPool kill a child whose resident memory
// goes over bytes while it runs a task; the task fails with an error
// wrapping ErrMemoryLimit and ErrWorkerDied. The child's Go runtime is
// also given the limit (debug.SetMemoryLimit), so that its collector works
// to stay below it. The parent checks every 50ms, so a very fast
// allocation can overshoot for that long. It is supported on Linux; a
// goroutine Pool refuses this option.
func WithMemoryLimit(bytes int64) Option {
	return func(c *config) error {
		if bytes < 1 {
			return fmt.Errorf("%w: memory limit %d; need at least 1 byte", loom.ErrInvalidArgument, bytes)
		}
		if !memoryWatchSupported {
			return fmt.Errorf("%w: memory limits need Linux", loom.ErrInvalidArgument)
		}
		c.memLimit = bytes
		return nil
	}
}
