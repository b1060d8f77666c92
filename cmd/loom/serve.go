package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"loom/internal/httpd"
	"loom/loop"
)

func newServe() *cobra.Command {
	var addr, monitorAddr string
	var loops int
	var rules []string
	var idle, head, write time.Duration
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve HTTP/1.1 on loom's event loop, with injected latency and failures",
		Long: `serve answers HTTP/1.1 (keep-alive, pipelining) on a group of event loops,
one per core. Every path serves a small HTML page with a title and links;
/health answers ok. Rules inject latency and failures per path prefix:

  --rule /slow=latency:200ms --rule /flaky=fail:0.3 --rule /api=latency:5ms,fail:0.01

A failed request gets 503 with Retry-After: 0. A connection that sends
nothing for --idle-timeout is closed, and so is one whose request head
takes longer than --head-timeout to arrive (slowloris). A client that
pipelines requests and does not read the answers is read no further once
64 KiB of answers wait for it, and closed after --write-timeout; partial
requests may hold 32 MiB in all, past which new ones get 503. It runs
until Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if loops < 0 {
				return fmt.Errorf("--loops must not be negative")
			}
			if idle < 0 || head < 0 || write < 0 {
				return fmt.Errorf("--idle-timeout, --head-timeout and --write-timeout must not be negative (0 turns them off)")
			}
			var rs []*httpd.Rule
			for _, s := range rules {
				r, err := httpd.ParseRule(s)
				if err != nil {
					return err
				}
				rs = append(rs, r)
			}
			return runServe(cmd, serveConfig{addr: addr, loops: loops, monitor: monitorAddr, rules: rs, idle: idle, head: head, write: write})
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	cmd.Flags().IntVar(&loops, "loops", 0, "event loops (0: one per core)")
	cmd.Flags().StringArrayVar(&rules, "rule", nil, "fault injection: /PREFIX=latency:DURATION,fail:RATE (repeatable)")
	cmd.Flags().StringVar(&monitorAddr, "monitor", "", "serve the monitor on this address too (beyond loopback it needs LOOM_MONITOR_TOKEN)")
	cmd.Flags().DurationVar(&idle, "idle-timeout", 2*time.Minute, "close a connection quiet for this long (0: never)")
	cmd.Flags().DurationVar(&head, "head-timeout", 10*time.Second, "close a connection whose request head takes longer (0: no limit)")
	cmd.Flags().DurationVar(&write, "write-timeout", 10*time.Second, "close a connection whose peer leaves its answers unread this long (0: never)")
	return cmd
}

// serveConfig is what the serve command's flags say.
type serveConfig struct {
	addr, monitor string
	loops         int
	rules         []*httpd.Rule
	idle, head    time.Duration
	write         time.Duration
}

func runServe(cmd *cobra.Command, cfg serveConfig) error {
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	if cfg.monitor != "" {
		stop, _, err := startMonitor(ctx, out, cfg.monitor)
		if err != nil {
			return err
		}
		defer stop()
	}
	g, err := loop.NewGroup("serve", cfg.loops)
	if err != nil {
		return err
	}
	srv := httpd.New(cfg.rules...)
	srv.HeadTimeout = cfg.head
	srv.WriteTimeout = cfg.write
	var opts []loop.ConnOption
	if cfg.idle > 0 {
		opts = append(opts, loop.IdleTimeout(cfg.idle))
	}
	bound, err := g.Listen(cfg.addr, srv, opts...)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "serving on http://%s with %d loops\n", bound, len(g.Loops()))
	if f, ok := out.(interface{ Sync() error }); ok {
		_ = f.Sync()
	}
	err = g.Run(ctx)
	report(out, srv, g)
	if ctx.Err() != nil {
		return nil // Ctrl-C: a normal end
	}
	return err
}

func report(out io.Writer, srv *httpd.Server, g *loop.Group) {
	var conns uint64
	var busy float64
	for _, m := range g.Metrics() {
		conns += m.Accepted
		busy += m.BusyRatio
	}
	fmt.Fprintf(out, "served %d requests (%d injected failures, %d bad) on %d connections (%d closed for not reading, %d refused as overloaded); loops %.0f%% busy\n",
		srv.Requests.Load(), srv.Failures.Load(), srv.BadRequests.Load(), conns, srv.Stalled.Load(), srv.Overloaded.Load(), 100*busy/float64(len(g.Loops())))
}
