package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"loom/dist"
	"loom/dist/jetstream"
	"loom/pool"
)

// hashJob is what the loom binary's hash function takes.
type hashJob struct {
	Data   []byte
	Rounds int           // SHA-256 rounds, at most maxHashRounds
	Delay  time.Duration // then a wait, at most maxHashDelay, as blocking work would
}

// Bounds of a hash job: the worker runs what remote callers send it.
const (
	maxHashRounds = 1 << 20
	maxHashDelay  = time.Minute
)

// hashFunc is the function the loom binary registers for remote callers
// (loom worker) and the demo's distributed part: SHA-256 of the data,
// rounds times, then a wait.
var hashFunc = pool.Register("loom.hash", func(ctx context.Context, j hashJob) (string, error) {
	if j.Rounds < 0 || j.Rounds > maxHashRounds || j.Delay < 0 || j.Delay > maxHashDelay {
		return "", fmt.Errorf("hash job out of bounds: %d rounds (at most %d), delay %v (at most %v)", j.Rounds, maxHashRounds, j.Delay, maxHashDelay)
	}
	sum := sha256.Sum256(j.Data)
	for range j.Rounds {
		sum = sha256.Sum256(sum[:])
	}
	select {
	case <-time.After(j.Delay):
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
	return hex.EncodeToString(sum[:]), nil
})

type workerConfig struct {
	url, pool string
	workers   int
	ackWait   time.Duration
}

func newWorker() *cobra.Command {
	c := workerConfig{}
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run the loom binary's registered functions for remote callers (a distributed pool)",
		Long: `worker connects to a NATS JetStream server or cluster and runs, for the
callers of the remote pool --pool, the functions this binary registers
(loom.hash), --workers at a time, until Ctrl-C or SIGTERM, which drain:
the jobs running finish and are answered, nothing else is taken. A job
whose worker dies goes to another worker after --ack-wait; callers and
workers must agree on it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case c.url == "":
				return fmt.Errorf("--url is required (nats://host:4222, or several, comma-separated)")
			case c.workers < 1 || c.ackWait < time.Millisecond:
				return fmt.Errorf("--workers must be at least 1 and --ack-wait at least 1ms")
			}
			return runWorker(cmd.Context(), cmd, c)
		},
	}
	cmd.Flags().StringVar(&c.url, "url", "", "the NATS server(s) to connect to")
	cmd.Flags().StringVar(&c.pool, "pool", "loom", "the remote pool to serve")
	cmd.Flags().IntVar(&c.workers, "workers", runtime.GOMAXPROCS(0), "jobs run at once")
	cmd.Flags().DurationVar(&c.ackWait, "ack-wait", dist.DefaultAckWait, "how soon the job of a worker that died goes to another")
	return cmd
}

func runWorker(ctx context.Context, cmd *cobra.Command, c workerConfig) error {
	b, err := jetstream.Connect(c.url)
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(cmd.OutOrStdout(), "worker: serving pool %q at %s, %d at a time\n", c.pool, c.url, c.workers)
	return dist.ServePool(ctx, b, c.pool, []dist.Option{dist.AckWait(c.ackWait)}, dist.Workers(c.workers))
}
