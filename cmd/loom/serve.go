package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"loom/internal/httpd"
	"loom/loop"
)

func newServe() *cobra.Command {
	var addr, monitorAddr string
	var loops int
	var rules []string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve HTTP/1.1 on loom's event loop, with injected latency and failures",
		Long: `serve answers HTTP/1.1 (keep-alive, pipelining) on a group of event loops,
one per core. Every path serves a small HTML page with a title and links;
/health answers ok. Rules inject latency and failures per path prefix:

  --rule /slow=latency:200ms --rule /flaky=fail:0.3 --rule /api=latency:5ms,fail:0.01

A failed request gets 503 with Retry-After: 0. It runs until Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if loops < 0 {
				return fmt.Errorf("--loops must not be negative")
			}
			var rs []*httpd.Rule
			for _, s := range rules {
				r, err := httpd.ParseRule(s)
				if err != nil {
					return err
				}
				rs = append(rs, r)
			}
			return runServe(cmd, addr, loops, monitorAddr, rs)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	cmd.Flags().IntVar(&loops, "loops", 0, "event loops (0: one per core)")
	cmd.Flags().StringArrayVar(&rules, "rule", nil, "fault injection: /PREFIX=latency:DURATION,fail:RATE (repeatable)")
	cmd.Flags().StringVar(&monitorAddr, "monitor", "", "serve the monitor on this address too")
	return cmd
}

func runServe(cmd *cobra.Command, addr string, loops int, monitorAddr string, rules []*httpd.Rule) error {
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	if monitorAddr != "" {
		stop, _, err := startMonitor(ctx, out, monitorAddr)
		if err != nil {
			return err
		}
		defer stop()
	}
	g, err := loop.NewGroup("serve", loops)
	if err != nil {
		return err
	}
	srv := httpd.New(rules...)
	bound, err := g.Listen(addr, srv)
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
	fmt.Fprintf(out, "served %d requests (%d injected failures, %d bad) on %d connections; loops %.0f%% busy\n",
		srv.Requests.Load(), srv.Failures.Load(), srv.BadRequests.Load(), conns, 100*busy/float64(len(g.Loops())))
}
