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
	out, urls, skipped, closeOut, err := openJournal(c.Out, stdout, urls)
	if err != nil {
		return Summary{}, err
	}
	defer closeOut()

	e := newEngine(c, tooLong)
	defer e.close(ctx)
	pl := pipeline.New(ctx, "fetch")
	pages := pipeline.Map(pipeline.From(pl, slices.Values(urls)), "fetch", e.fetchOne, pipeline.Workers(c.Concurrency))
	records := pipeline.Map(pages, "analyze", e.analyze, pipeline.Workers(c.Concurrency))
	if c.Progress {
		defer e.progress(stderr, int64(len(urls)))()
	}
	var writeErr error
	for r := range records.Items() {
		if err := e.record(out, r); err != nil && writeErr == nil {
			writeErr = err
		}
	}
	runErr := pl.Wait()
	sum := e.summary(skipped)
	fmt.Fprintf(stderr, "fetch: %d fetched, %d failed, %d skipped (already done), %d retried, %d attempts, %d breaker trips, %d bytes in %v (%.0f URLs/s)\n",
		sum.Fetched, sum.Failed, sum.Skipped, sum.Retried, sum.Attempts, sum.BreakerTrips, sum.Bytes,
		sum.Elapsed.Round(time.Millisecond), float64(sum.Fetched+sum.Failed)/sum.Elapsed.Seconds())
	if cause := context.Cause(ctx); errors.Is(cause, ErrDeadline) {
		left := int64(len(urls)) - sum.Fetched - sum.Failed
		runErr = fmt.Errorf("%w: %d of %d URLs not done (run again with --out to resume them)", cause, left, len(urls))
	}
	return sum, errors.Join(writeErr, runErr)
}

// openJournal opens the output: stdout, or the journal file path (appended
// to), in which case the URLs it already records are skipped. It returns
// the writer, the URLs left to do, how many were skipped, and what closes
// the output.
func openJournal(path string, stdout io.Writer, urls []string) (io.Writer, []string, int, func(), error) {
	if path == "" {
		return stdout, urls, 0, func() {}, nil
	}
	done, err := resume(path)
	if err != nil {
		return nil, nil, 0, nil, fmt.Errorf("resuming from %s: %w", path, err)
	}
	left, skipped := urls[:0], 0
	for _, u := range urls {
		if done[u] {
			skipped++
		} else {
			left = append(left, u)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, 0, nil, err
	}
	return f, left, skipped, func() { f.Close() }, nil
}

// engine is one run's machinery: the HTTP client, the per-host guards, the
// policies around each attempt, the CPU pool, and the counts.
type engine struct {
	c       Config
	tooLong map[string]int
	start   time.Time
	client  *http.Client
	guards  *hostGuards
	retry   *policy.Retry
	limiter policy.Policy // nil without a rate limit
	cpu     *pool.Pool

	attempts, retried, failed, timedOut, refused, httpError, other, fetched, bytesIn atomic.Int64
}

func newEngine(c Config, tooLong map[string]int) *engine {
	e := &engine{c: c, tooLong: tooLong, start: time.Now(),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c.PerHost, MaxConnsPerHost: c.PerHost}},
		guards: &hostGuards{perHost: c.PerHost, sems: map[string]*loom.Semaphore{}, breakers: map[string]*policy.Breaker{}},
		cpu:    pool.New("fetch cpu"),
	}
	e.retry = policy.NewRetry("fetch", policy.Attempts(c.Retries+1), policy.WithBackoff(policy.Backoff{Base: 100 * time.Millisecond, Max: 5 * time.Second}),
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
	// The per-host breaker and rate limit are added per URL; a limit only
	// when one was asked for.
	if c.Rate > 0 {
		e.limiter = policy.NewKeyedRateLimit("fetch per host", c.Rate, 1)
	}
	return e
}

func (e *engine) close(ctx context.Context) {
	_ = e.cpu.Close(context.WithoutCancel(ctx))
	e.client.CloseIdleConnections()
}

// fetchOne is the fetch stage: one URL, with its retries, through its
// host's guards. A URL that fails is a Record with its error; only the
// run's end is an error here.
func (e *engine) fetchOne(ctx context.Context, raw string) (page, error) {
	t0 := time.Now()
	rec := Record{URL: raw}
	if n, ok := e.tooLong[raw]; ok {
		rec.Error = fmt.Sprintf("a URL line of %d bytes, over the %d-byte limit", n, MaxURLBytes)
		return page{rec: rec}, nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		rec.Error = fmt.Sprintf("bad URL %q: need an absolute http or https URL", raw)
		return page{rec: rec}, nil
	}
	sem, breaker := e.guards.get(u.Host)
	var body []byte
	tries := 0
	_, err = policy.Do(policy.WithKey(ctx, u.Host), func(ctx context.Context) (struct{}, error) {
		tries++
		e.attempts.Add(1)
		if err := sem.Acquire(ctx, 1); err != nil {
			return struct{}{}, err
		}
		defer sem.Release(1)
		b, err := e.get(ctx, raw, &rec)
		body = b
		return struct{}{}, err
	}, policies(e.retry, breaker, e.limiter, policy.Timeout(e.c.Timeout))...)
	rec.Attempts = tries
	if tries > 1 {
		e.retried.Add(1)
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

// get makes one attempt: the request, its status (marking what is not
// worth retrying Permanent, and honouring Retry-After up to MaxRetryWait)
// and the body, bounded by MaxBody.
func (e *engine) get(ctx context.Context, raw string, rec *Record) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", raw, nil)
	if err != nil {
		return nil, policy.Permanent(err)
	}
	req.Header.Set("User-Agent", "loom-fetch/1")
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	rec.Status = resp.StatusCode
	if resp.StatusCode >= 400 {
		err := error(statusError{resp.StatusCode})
		if d, ok := policy.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			if d > e.c.MaxRetryWait {
				// Waiting an hour, or until 2100, with nothing recorded
				// is no answer: say so.
				return nil, policy.Permanent(fmt.Errorf("%w, and Retry-After asks for %v, over --max-retry-wait %v", err, d.Round(time.Second), e.c.MaxRetryWait))
			}
			err = policy.RetryAfter(err, d)
		}
		if resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
			err = policy.Permanent(err)
		}
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, e.c.MaxBody+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > e.c.MaxBody {
		return nil, policy.Permanent(fmt.Errorf("body larger than --max-body %d bytes", e.c.MaxBody))
	}
	return b, nil
}

// analyze is the analyze stage: hash, title and links of a fetched page,
// on the CPU pool.
func (e *engine) analyze(ctx context.Context, p page) (Record, error) {
	if p.rec.Error != "" {
		return p.rec, nil
	}
	t, err := pool.Submit(ctx, e.cpu, "analyze", func(context.Context) (Record, error) {
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

// record writes r as a JSON line to the journal and counts it, failures
// by kind (each failure in exactly one kind).
func (e *engine) record(out io.Writer, r Record) error {
	line, _ := json.Marshal(r)
	_, err := out.Write(append(line, '\n'))
	if r.Error == "" {
		e.fetched.Add(1)
		e.bytesIn.Add(int64(r.Bytes))
		return err
	}
	e.failed.Add(1)
	switch {
	case strings.Contains(r.Error, "timed out"):
		e.timedOut.Add(1)
	case strings.Contains(r.Error, "circuit breaker"):
		e.refused.Add(1)
	case r.Status >= 400:
		e.httpError.Add(1)
	default:
		e.other.Add(1)
	}
	return err
}

// progress draws a progress bar on w every 200ms until the returned stop
// is called.
func (e *engine) progress(w io.Writer, total int64) (stop func()) {
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				fmt.Fprintln(w)
				return
			case <-t.C:
				n := e.fetched.Load() + e.failed.Load()
				fmt.Fprintf(w, "\r%s %d/%d  %d failed  %d retried", bar(n, total, 30), n, total, e.failed.Load(), e.retried.Load())
			}
		}
	}()
	return func() { close(quit); <-done }
}

// summary is the run's counts so far.
func (e *engine) summary(skipped int) Summary {
	_ = e.cpu.Close(context.Background()) // for its final metrics; idempotent
	return Summary{Fetched: e.fetched.Load(), Failed: e.failed.Load(), TimedOut: e.timedOut.Load(), Refused: e.refused.Load(),
		HTTPError: e.httpError.Load(), Other: e.other.Load(), Skipped: int64(skipped),
		Retried: e.retried.Load(), Attempts: e.attempts.Load(), BreakerTrips: e.guards.trips.Load(), Bytes: e.bytesIn.Load(),
		Elapsed: time.Since(e.start), CPU: e.cpu.Metrics()}
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
