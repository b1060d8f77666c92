package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"loom"
	"loom/internal/fetch"
	"loom/internal/httpd"
	"loom/internal/registry"
	"loom/loop"
	"loom/monitor"
)

type demoConfig struct {
	urls        int
	concurrency int
	timeout     time.Duration
	monitor     string // address of the monitor
	hold        bool   // keep the monitor and server up after the run
	progress    bool
	dist        bool // run the distributed part instead
	jobs        int  // its jobs
}

func newDemo() *cobra.Command {
	c := demoConfig{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole system: serve a faulty site on event loops and fetch it with retries, breakers and pools",
		Long: `demo starts loom serve on loopback as its target: four ports on a group of
event loops, with slow pages (/slow, slower than the fetch timeout) and
flaky ones (/flaky, 30% answered 503). It serves the monitor, then fetches
every URL with loom fetch's engine (a pipeline with per-host limits,
timeouts, retries honouring Retry-After, per-host circuit breakers and a
CPU pool for hashing), and ends with a report: throughput, failures,
retries, breaker trips, and the loops' and pools' own figures.

With --hold the server and the monitor stay up after the report, until
Ctrl-C, so that you can look around (loom top ADDR).

With --dist it runs the distributed part instead: an embedded NATS
JetStream server, three loom worker processes of this binary serving a
remote pool, --jobs jobs submitted to it, one worker SIGKILLed midway,
and a report of jobs done, redelivered, dead-lettered, lost (0) and done
twice (0).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if c.urls < 1 || c.concurrency < 1 || c.timeout <= 0 || c.jobs < 1 {
				return fmt.Errorf("--urls, --concurrency and --jobs must be at least 1 and --timeout positive")
			}
			if c.dist {
				return runDistDemo(cmd.Context(), cmd.OutOrStdout(), distDemoConfig{jobs: c.jobs, workers: 3})
			}
			return runDemo(cmd.Context(), cmd.OutOrStdout(), c)
		},
	}
	cmd.Flags().IntVar(&c.urls, "urls", 400, "how many URLs to fetch")
	cmd.Flags().IntVar(&c.concurrency, "concurrency", 32, "requests in flight at most")
	cmd.Flags().DurationVar(&c.timeout, "timeout", 200*time.Millisecond, "timeout per request")
	cmd.Flags().StringVar(&c.monitor, "monitor", "127.0.0.1:0", "address of the monitor (beyond loopback it needs LOOM_MONITOR_TOKEN)")
	cmd.Flags().BoolVar(&c.hold, "hold", false, "keep the server and the monitor up after the run, until Ctrl-C")
	cmd.Flags().BoolVar(&c.progress, "progress", isTerminal(os.Stdout), "show a live progress bar (default: on a terminal)")
	cmd.Flags().BoolVar(&c.dist, "dist", false, "run the distributed part instead: an embedded JetStream server, three loom worker processes, one SIGKILLed midway")
	cmd.Flags().IntVar(&c.jobs, "jobs", 300, "with --dist, how many jobs to run")
	return cmd
}

// demoHosts is how many ports the demo serves on: each is a host to the
// fetcher, with its own limit and breaker.
const demoHosts = 4

func runDemo(ctx context.Context, out io.Writer, c demoConfig) error {
	start := time.Now()
	stopMonitor, monAddr, err := startMonitor(ctx, out, c.monitor)
	if err != nil {
		return err
	}
	defer stopMonitor()

	// The target: loom serve on a group of loops, with injected faults.
	g, err := loop.NewGroup("demo-serve", 0)
	if err != nil {
		return err
	}
	slow, _ := httpd.ParseRule("/slow=latency:" + (3 * c.timeout).String())
	flaky, _ := httpd.ParseRule("/flaky=fail:0.3")
	srv := httpd.New(slow, flaky)
	var bases []string
	for range demoHosts {
		addr, err := g.Listen("127.0.0.1:0", srv)
		if err != nil {
			return err
		}
		bases = append(bases, "http://"+addr.String())
	}
	sctx, stopServer := context.WithCancel(context.WithoutCancel(ctx))
	served := loom.Go(sctx, "demo-serve", func(ctx context.Context) (struct{}, error) { return struct{}{}, g.Run(ctx) })
	defer func() { stopServer(); _, _ = served.Wait(context.Background()) }()
	fmt.Fprintf(out, "loom demo: serving a test site on %d ports (%s ...) with %d event loops\n", demoHosts, bases[0], len(g.Loops()))
	fmt.Fprintf(out, "  /slow pages answer after %v (the fetch timeout is %v); 30%% of /flaky pages fail with 503\n", 3*c.timeout, c.timeout)

	fmt.Fprintf(out, "fetching %d URLs, %d in flight, %d per host, timeout %v, 2 retries\n\n", c.urls, c.concurrency, c.concurrency/demoHosts, c.timeout)
	var progress io.Writer = io.Discard
	if c.progress {
		progress = out
	}
	sum, fetchErr := fetch.Run(ctx, strings.NewReader(demoURLs(bases, c.urls)), io.Discard, progress, fetch.Config{
		Concurrency: c.concurrency, PerHost: max(c.concurrency/demoHosts, 1), Timeout: c.timeout,
		Retries: 2, MaxBody: 1 << 20, Progress: c.progress,
	})
	demoReport(out, c, sum, srv, g, start)
	if fetchErr != nil {
		return fetchErr
	}
	if c.hold && ctx.Err() == nil {
		fmt.Fprintf(out, "\nthe server and the monitor stay up; try: loom top %s. Ctrl-C to quit.\n", monAddr)
		<-ctx.Done()
	}
	return nil
}

// demoURLs returns n URLs, a line each: mostly pages, some slow, some
// flaky, over every base.
func demoURLs(bases []string, n int) string {
	var urls strings.Builder
	for i := range n {
		kind := "page"
		switch {
		case i%10 == 9:
			kind = "slow"
		case i%5 == 2:
			kind = "flaky"
		}
		fmt.Fprintf(&urls, "%s/%s/%d\n", bases[i%len(bases)], kind, i)
	}
	return urls.String()
}

// demoReport prints what the fetch did and what the server, the CPU pool
// and the registry saw.
func demoReport(out io.Writer, c demoConfig, sum fetch.Summary, srv *httpd.Server, g *loop.Group, start time.Time) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "report:")
	fmt.Fprintf(tw, "  URLs fetched\t%d of %d\n", sum.Fetched, c.urls)
	fmt.Fprintf(tw, "  failed\t%d (%d timed out after retries, %d refused by an open breaker, %d HTTP errors after retries, %d other)\n",
		sum.Failed, sum.TimedOut, sum.Refused, sum.HTTPError, sum.Other)
	fmt.Fprintf(tw, "  retried URLs\t%d (%d attempts in all)\n", sum.Retried, sum.Attempts)
	fmt.Fprintf(tw, "  breaker trips\t%d\n", sum.BreakerTrips)
	fmt.Fprintf(tw, "  throughput\t%.0f URLs/s, %d bytes\n", float64(sum.Fetched+sum.Failed)/sum.Elapsed.Seconds(), sum.Bytes)
	var accepted, writes uint64
	var busy float64
	for _, m := range g.Metrics() {
		accepted += m.Accepted
		writes += m.WriteCalls
		busy += m.BusyRatio
	}
	fmt.Fprintf(tw, "  server\t%d requests, %d injected failures, %d connections, %d writev calls, loops %.1f%% busy\n",
		srv.Requests.Load(), srv.Failures.Load(), accepted, writes, 100*busy/float64(len(g.Loops())))
	fmt.Fprintf(tw, "  CPU pool\t%d hashed, wait p50 %v, run p50 %v\n",
		sum.CPU.Completed, sum.CPU.Wait.Quantile(0.5), sum.CPU.Run.Quantile(0.5))
	fmt.Fprintf(tw, "  task registry\t%d recent terminations kept, %d resources registered\n",
		len(registry.Terminated()), len(registry.Resources()))
	fmt.Fprintf(tw, "  elapsed\t%v\n", time.Since(start).Round(time.Millisecond))
	tw.Flush()
}

// startMonitor serves the monitor on addr as a task of its own, and returns
// the function that stops it and the address it listens on. The token, for
// an address beyond loopback, comes from LOOM_MONITOR_TOKEN, so that it
// does not show in the process's command line.
func startMonitor(ctx context.Context, out io.Writer, addr string) (func(), string, error) {
	var opts []monitor.Option
	if token := os.Getenv("LOOM_MONITOR_TOKEN"); token != "" {
		opts = append(opts, monitor.WithToken(token))
	} else if host, _, err := net.SplitHostPort(addr); err == nil && !isLoopbackHost(host) {
		return nil, "", fmt.Errorf("monitor on %s, beyond loopback: set LOOM_MONITOR_TOKEN (%w)", addr, monitor.ErrNeedToken)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("monitor: %w", err)
	}
	bound := ln.Addr().String()
	fmt.Fprintf(out, "monitor: http://%s   (loom top %s)\n", bound, bound)
	mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	task := loom.Go(mctx, "monitor", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, monitor.ServeListener(ctx, ln, opts...)
	})
	return func() {
		cancel()
		if _, err := task.Wait(context.Background()); err != nil {
			fmt.Fprintln(out, "monitor:", err)
		}
	}, bound, nil
}

// isLoopbackHost reports whether host is localhost or a loopback address.
func isLoopbackHost(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}
