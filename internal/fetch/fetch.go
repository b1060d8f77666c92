// Package fetch is the engine of loom fetch: a bulk HTTP fetcher built on
// loom's pipeline, pool and policies. It is internal so that the command
// and the benchmarks share it without making it a public promise.
package fetch

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"loom"
	"loom/pipeline"
	"loom/policy"
	"loom/pool"
)

// Config is what the command's flags set.
type Config struct {
	Concurrency int           // requests in flight at most
	PerHost     int           // requests in flight per host at most
	Rate        float64       // requests per second per host; 0: no limit
	Timeout     time.Duration // per request
	Retries     int           // after the first attempt
	MaxBody     int64         // largest body accepted, in bytes
	Out         string        // results file to append to and resume from; "" for stdout
	Progress    bool          // progress bar on stderr
	// MaxRetryWait caps the wait a Retry-After header may ask for: a
	// server asking for longer gets an error line for that URL instead of
	// a wait. 0 means DefaultMaxRetryWait.
	MaxRetryWait time.Duration
	// Deadline, when set, ends the whole run after that long: URLs not
	// done by then get no line (a later run with Out resumes them), and
	// Run returns an error wrapping ErrDeadline that says how many.
	Deadline time.Duration
}

// DefaultMaxRetryWait is MaxRetryWait's default.
const DefaultMaxRetryWait = time.Minute

// MaxURLBytes is the longest URL line read: a longer line gets an error
// line (its URL cut to its first 100 bytes and "...") and the run goes on.
const MaxURLBytes = 64 << 10

// ErrDeadline is wrapped by Run's error when Config.Deadline ended the run
// before every URL was done.
var ErrDeadline = errors.New("fetch: the run's deadline passed")

// Summary is what a run did.
type Summary struct {
	// Failed is TimedOut + Refused (by an open breaker) + HTTPError (an
	// error status after the retries) + Other (network errors, bad URLs,
	// bodies too large, Retry-After too long).
	Fetched, Failed, TimedOut, Refused, HTTPError, Other, Skipped int64
	Retried, Attempts, BreakerTrips                               int64
	Bytes                                                         int64
	Elapsed                                                       time.Duration
	CPU                                                           pool.Metrics // the analysis pool
}

// Record is one line of output: one URL's outcome.
type Record struct {
	URL      string `json:"url"`
	Status   int    `json:"status,omitempty"`
	Bytes    int    `json:"bytes,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	Title    string `json:"title,omitempty"`
	Links    int    `json:"links,omitempty"`
	Attempts int    `json:"attempts"`
	Millis   int64  `json:"ms"`
	Error    string `json:"error,omitempty"`
}

// page is a fetched body on its way to analysis.
type page struct {
	rec  Record
	body []byte
}

// readURLs returns the distinct URLs of in, in order. A line longer than
// MaxURLBytes is not a URL: it comes back cut to its first 100 bytes and
// "...", with its length in tooLong, so that it gets an error line (and a
// resumed run recognises that line).
func readURLs(in io.Reader) (urls []string, tooLong map[string]int, err error) {
	seen := map[string]bool{}
	r := bufio.NewReaderSize(in, 64<<10)
	for {
		line, n, err := readLine(r)
		if n > MaxURLBytes {
			u := strings.TrimSpace(string(line[:min(len(line), 100)])) + "..."
			if tooLong == nil {
				tooLong = map[string]int{}
			}
			if !seen[u] {
				seen[u] = true
				tooLong[u] = n
				urls = append(urls, u)
			}
		} else if u := strings.TrimSpace(string(line)); u != "" && !strings.HasPrefix(u, "#") && !seen[u] {
			seen[u] = true
			urls = append(urls, u)
		}
		if err == io.EOF {
			return urls, tooLong, nil
		}
		if err != nil {
			return urls, tooLong, err
		}
	}
}

// readLine reads one line, without its newline, keeping at most
// MaxURLBytes+1 of its bytes however long it is; n is its whole length.
// err is io.EOF after the last line.
func readLine(r *bufio.Reader) (line []byte, n int, err error) {
	for {
		chunk, err := r.ReadSlice('\n')
		n += len(chunk)
		if len(line) <= MaxURLBytes {
			line = append(line, chunk[:min(len(chunk), MaxURLBytes+1-len(line))]...)
		}
		switch err {
		case bufio.ErrBufferFull:
			continue
		case nil:
			n--
			line = bytes.TrimSuffix(line, []byte("\n"))
			return line, n, nil
		default:
			return line, n, err
		}
	}
}

// resume reads the URLs already recorded in path, and cuts off a last line
// that a killed run left half written.
func resume(path string) (map[string]bool, error) {
	done := map[string]bool{}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return done, nil
	}
	if err != nil {
		return nil, err
	}
	complete := bytes.LastIndexByte(data, '\n') + 1
	for _, line := range bytes.Split(data[:complete], []byte("\n")) {
		var r Record
		if len(line) > 0 && json.Unmarshal(line, &r) == nil && r.URL != "" {
			done[r.URL] = true
		}
	}
	if complete < len(data) {
		if err := os.Truncate(path, int64(complete)); err != nil {
			return nil, err
		}
	}
	return done, nil
}

// hostGuards holds what is kept per host: a concurrency limit and a
// breaker, made on first use.
type hostGuards struct {
	mu       sync.Mutex
	perHost  int
	sems     map[string]*loom.Semaphore
	breakers map[string]*policy.Breaker
	trips    atomic.Int64
}

func (h *hostGuards) get(host string) (*loom.Semaphore, *policy.Breaker) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sems[host] == nil {
		h.sems[host] = loom.NewSemaphore("fetch "+host, int64(h.perHost))
		h.breakers[host] = policy.NewBreaker("fetch "+host, policy.CountWindow(50), policy.MinCalls(20),
			policy.OpenFor(2*time.Second), policy.HalfOpenProbes(2),
			policy.OnStateChange(func(_, to policy.BreakerState) {
				if to == policy.Open {
					h.trips.Add(1)
				}
			}))
	}
	return h.sems[host], h.breakers[host]
}

// statusError is an HTTP status the fetcher treats as a failure.
type statusError struct{ code int }

func (e statusError) Error() string {
	return fmt.Sprintf("HTTP %d %s", e.code, http.StatusText(e.code))
}

var (
	titleRe = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)
	linkRe  = regexp.MustCompile(`(?i)<a\s[^>]*href=`)
)

// Run fetches the URLs read from in (one per line; blank lines and #
// comments skipped) and writes one JSON Record per URL to c.Out, or to
// stdout; a summary goes to stderr.
func Run(ctx context.Context, in io.Reader, stdout, stderr io.Writer, c Config) (Summary, error) {
	urls, tooLong, err := readURLs(in)
	if err != nil {
		return Summary{}, fmt.Errorf("reading URLs: %w", err)
	}
	if c.MaxRetryWait <= 0 {
		c.MaxRetryWait = DefaultMaxRetryWait
	}
	if c.Deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, c.Deadline, fmt.Errorf("%w (--deadline %v)", ErrDeadline, c.Deadline))
		defer cancel()
	}
	out := stdout
	skipped := 0
	if c.Out != "" {
		done, err := resume(c.Out)
		if err != nil {
			return Summary{}, fmt.Errorf("resuming from %s: %w", c.Out, err)
		}
		left := urls[:0]
		for _, u := range urls {
			if done[u] {
				skipped++
			} else {
				left = append(left, u)
			}
		}
		urls = left
		f, err := os.OpenFile(c.Out, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return Summary{}, err
		}
		defer f.Close()
		out = f
	}

	start := time.Now()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c.PerHost, MaxConnsPerHost: c.PerHost}}
	defer client.CloseIdleConnections()
	guards := &hostGuards{perHost: c.PerHost, sems: map[string]*loom.Semaphore{}, breakers: map[string]*policy.Breaker{}}
	retry := policy.NewRetry("fetch", policy.Attempts(c.Retries+1), policy.Backoff(100*time.Millisecond, 5*time.Second),
		policy.RetryIf(func(err error) bool {
			// Network errors, 429, 5xx and an open breaker (which says
			// when to come back) are worth another try; other statuses
			// are marked Permanent where they are made.
			var se statusError
			if errors.As(err, &se) {
				return se.code == http.StatusTooManyRequests || se.code >= 500
			}
			return true
		}))
	// Policies around each attempt: the per-host breaker and rate limit are
	// added per URL; a limit only when one was asked for.
	var limiter policy.Policy
	if c.Rate > 0 {
		limiter = policy.NewKeyedRateLimit("fetch per host", c.Rate, 1)
	}
	cpu := pool.New(pool.WithName("fetch cpu"))
	defer cpu.Close(context.WithoutCancel(ctx))

	var attempts, retried, failed, timedOut, refused, httpError, other, fetched, bytesIn atomic.Int64
	fetchOne := func(ctx context.Context, raw string) (page, error) {
		t0 := time.Now()
		rec := Record{URL: raw}
		if n, ok := tooLong[raw]; ok {
			rec.Error = fmt.Sprintf("a URL line of %d bytes, over the %d-byte limit", n, MaxURLBytes)
			return page{rec: rec}, nil
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			rec.Error = fmt.Sprintf("bad URL %q: need an absolute http or https URL", raw)
			return page{rec: rec}, nil
		}
		sem, breaker := guards.get(u.Host)
		var body []byte
		tries := 0
		_, err = policy.Do(policy.WithKey(ctx, u.Host), func(ctx context.Context) (struct{}, error) {
			tries++
			attempts.Add(1)
			if err := sem.Acquire(ctx, 1); err != nil {
				return struct{}{}, err
			}
			defer sem.Release(1)
			req, err := http.NewRequestWithContext(ctx, "GET", raw, nil)
			if err != nil {
				return struct{}{}, policy.Permanent(err)
			}
			req.Header.Set("User-Agent", "loom-fetch/1")
			resp, err := client.Do(req)
			if err != nil {
				return struct{}{}, err
			}
			defer resp.Body.Close()
			rec.Status = resp.StatusCode
			if resp.StatusCode >= 400 {
				err := error(statusError{resp.StatusCode})
				if d, ok := policy.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
					if d > c.MaxRetryWait {
						// Waiting an hour, or until 2100, with
						// nothing recorded is no answer: say so.
						return struct{}{}, policy.Permanent(fmt.Errorf("%w, and Retry-After asks for %v, over --max-retry-wait %v", err, d.Round(time.Second), c.MaxRetryWait))
					}
					err = policy.RetryAfter(err, d)
				}
				if resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
					err = policy.Permanent(err)
				}
				return struct{}{}, err
			}
			b, err := io.ReadAll(io.LimitReader(resp.Body, c.MaxBody+1))
			if err != nil {
				return struct{}{}, err
			}
			if int64(len(b)) > c.MaxBody {
				return struct{}{}, policy.Permanent(fmt.Errorf("body larger than --max-body %d bytes", c.MaxBody))
			}
			body = b
			return struct{}{}, nil
		}, policies(retry, breaker, limiter, policy.Timeout(c.Timeout))...)
		rec.Attempts = tries
		if tries > 1 {
			retried.Add(1)
		}
		rec.Millis = time.Since(t0).Milliseconds()
		if err != nil {
			if ctx.Err() != nil {
				return page{}, context.Cause(ctx) // the run is stopping: record nothing
			}
			rec.Error = err.Error()
		}
		return page{rec: rec, body: body}, nil
	}
	analyze := func(ctx context.Context, p page) (Record, error) {
		if p.rec.Error != "" {
			return p.rec, nil
		}
		t, err := pool.Submit(ctx, cpu, "analyze", func(context.Context) (Record, error) {
			r := p.rec
			sum := sha256.Sum256(p.body)
			r.SHA256 = hex.EncodeToString(sum[:])
			r.Bytes = len(p.body)
			if m := titleRe.FindSubmatch(p.body); m != nil {
				r.Title = strings.Join(strings.Fields(string(m[1])), " ")
			}
			r.Links = len(linkRe.FindAllIndex(p.body, -1))
			return r, nil
		})
		if err != nil {
			return Record{}, err
		}
		return t.Wait(ctx)
	}

	pl := pipeline.New(ctx, "fetch")
	pages := pipeline.Map(pipeline.From(pl, slices.Values(urls)), "fetch", fetchOne, pipeline.Workers(c.Concurrency))
	records := pipeline.Map(pages, "analyze", analyze, pipeline.Workers(c.Concurrency))

	total := len(urls)
	var progressDone chan struct{}
	if c.Progress {
		progressDone = make(chan struct{})
		stop := make(chan struct{})
		defer func() { close(stop); <-progressDone }()
		go func() {
			defer close(progressDone)
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					fmt.Fprintln(stderr)
					return
				case <-t.C:
					n := fetched.Load() + failed.Load()
					fmt.Fprintf(stderr, "\r%s %d/%d  %d failed  %d retried", bar(n, int64(total), 30), n, total, failed.Load(), retried.Load())
				}
			}
		}()
	}
	var writeErr error
	for r := range records.Items() {
		line, _ := json.Marshal(r)
		if _, err := out.Write(append(line, '\n')); err != nil && writeErr == nil {
			writeErr = err
		}
		if r.Error != "" {
			failed.Add(1)
			switch {
			case strings.Contains(r.Error, "timed out"):
				timedOut.Add(1)
			case strings.Contains(r.Error, "circuit breaker"):
				refused.Add(1)
			case r.Status >= 400:
				httpError.Add(1)
			default:
				other.Add(1)
			}
		} else {
			fetched.Add(1)
			bytesIn.Add(int64(r.Bytes))
		}
	}
	runErr := pl.Wait()
	elapsed := time.Since(start)
	fmt.Fprintf(stderr, "fetch: %d fetched, %d failed, %d skipped (already done), %d retried, %d attempts, %d breaker trips, %d bytes in %v (%.0f URLs/s)\n",
		fetched.Load(), failed.Load(), skipped, retried.Load(), attempts.Load(), guards.trips.Load(), bytesIn.Load(),
		elapsed.Round(time.Millisecond), float64(fetched.Load()+failed.Load())/elapsed.Seconds())
	_ = cpu.Close(context.WithoutCancel(ctx))
	if cause := context.Cause(ctx); errors.Is(cause, ErrDeadline) {
		left := int64(total) - fetched.Load() - failed.Load()
		runErr = fmt.Errorf("%w: %d of %d URLs not done (run again with --out to resume them)", cause, left, total)
	}
	sum := Summary{Fetched: fetched.Load(), Failed: failed.Load(), TimedOut: timedOut.Load(), Refused: refused.Load(),
		HTTPError: httpError.Load(), Other: other.Load(), Skipped: int64(skipped),
		Retried: retried.Load(), Attempts: attempts.Load(), BreakerTrips: guards.trips.Load(), Bytes: bytesIn.Load(),
		Elapsed: elapsed, CPU: cpu.Metrics()}
	return sum, errors.Join(writeErr, runErr)
}

func bar(n, total int64, width int) string {
	if total == 0 {
		return "[" + strings.Repeat("=", width) + "]"
	}
	k := int(int64(width) * n / total)
	return "[" + strings.Repeat("=", k) + strings.Repeat(" ", width-k) + "]"
}

// policies drops the nil ones from ps, keeping the order.
func policies(ps ...policy.Policy) []policy.Policy {
	out := ps[:0]
	for _, p := range ps {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}
