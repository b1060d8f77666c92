package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	fetcher "loom/internal/fetch"
)

func newFetch() *cobra.Command {
	var c fetcher.Config
	cmd := &cobra.Command{
		Use:   "fetch [URLS-FILE|-]",
		Short: "Fetch many URLs politely and resumably, writing one JSON line per URL",
		Long: `fetch reads URLs (one per line; blank lines and # comments skipped) from a
file or standard input, fetches them with a global and a per-host limit, a
per-host rate limit, a timeout per request, retries with backoff that honour
Retry-After, and a circuit breaker per host; hashes each body and extracts
its title and link count on a CPU pool; and writes one JSON line per URL.

With --out FILE the run is resumable: the URLs already in FILE are skipped,
so a run killed midway and started again neither loses nor repeats a URL.
A bad URL, a URL line over 64 KiB, an unreachable host, a body over
--max-body or a Retry-After longer than --max-retry-wait gets an error line
and the run goes on. --deadline ends the whole run: the URLs not done get
no line, so a run with --out resumes them.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case c.Concurrency < 1 || c.PerHost < 1:
				return fmt.Errorf("--concurrency and --per-host must be at least 1")
			case c.Timeout <= 0 || c.Retries < 0 || c.MaxBody < 1 || !(c.Rate >= 0):
				return fmt.Errorf("--timeout and --max-body must be positive, --retries and --rate not negative")
			case c.MaxRetryWait <= 0 || c.Deadline < 0:
				return fmt.Errorf("--max-retry-wait must be positive, --deadline not negative (0: none)")
			}
			in := cmd.InOrStdin()
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			_, err := fetcher.Run(cmd.Context(), in, cmd.OutOrStdout(), cmd.ErrOrStderr(), c)
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&c.Concurrency, "concurrency", 64, "requests in flight at most")
	f.IntVar(&c.PerHost, "per-host", 4, "requests in flight per host at most")
	f.Float64Var(&c.Rate, "rate", 0, "requests per second per host (0: no limit)")
	f.DurationVar(&c.Timeout, "timeout", 10*time.Second, "timeout per request")
	f.IntVar(&c.Retries, "retries", 3, "retries per URL after the first attempt")
	f.Int64Var(&c.MaxBody, "max-body", 10<<20, "largest body to accept, in bytes")
	f.DurationVar(&c.MaxRetryWait, "max-retry-wait", fetcher.DefaultMaxRetryWait, "longest Retry-After to wait for; a longer one gets an error line")
	f.DurationVar(&c.Deadline, "deadline", 0, "end the whole run after this long (0: no deadline); what is left resumes with --out")
	f.StringVar(&c.Out, "out", "", "append results to this file and skip the URLs already in it (resume)")
	f.BoolVar(&c.Progress, "progress", isTerminal(os.Stderr), "show a progress bar on standard error (default: when it is a terminal)")
	return cmd
}

// isTerminal reports whether f is a terminal (a character device), where a
// progress bar belongs.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
