package monitor

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"loom"
	"loom/internal/registry"
)

//go:embed page.html static
var page embed.FS

// DefaultAddr is where Serve listens when given an empty address: loopback
// only, so that nothing outside the machine can see or cancel tasks.
const DefaultAddr = "127.0.0.1:9190"

// ErrCancelRefused is returned (as HTTP 403) for a cancel request that the
// monitor may not honour: it lacks the token, or is not a request a web
// page of another site could not have made (see Handler).
var ErrCancelRefused = errors.New("monitor: cancel refused")

// ErrForbidden is returned (as HTTP 403) for a request the monitor does
// not answer at all: a Host header that is not this monitor's (DNS
// rebinding), or a missing or wrong token where one is required.
var ErrForbidden = errors.New("monitor: forbidden")

// ErrNeedToken is returned by Serve and ServeListener for an address beyond
// loopback without WithToken: the monitor shows stacks, profiles and the
// process's command line, so it does not open them to the network.
var ErrNeedToken = errors.New("monitor: a monitor reachable beyond loopback needs a token (WithToken)")

// ActionHeader must be present, with any value, on every request that
// changes state (cancel). A web page of another site cannot add a custom
// header without the browser first asking the monitor (a CORS preflight),
// which the monitor never allows, so the header proves the request was
// not forged by a page the user happened to visit (CSRF).
const ActionHeader = "X-Loom-Monitor"

// Timeouts of the server that Serve runs (net/http's http.Server fields).
// WriteTimeout is left unset so that a CPU profile or trace of up to its
// requested length can be written.
const (
	ReadHeaderTimeout = 10 * time.Second
	IdleTimeout       = 2 * time.Minute
	ShutdownTimeout   = 5 * time.Second
)

// tokenCookie carries the token for the web page, once it was opened with
// ?token=: the page's own requests then carry it without scripting.
const tokenCookie = "loom_monitor_token"

// Option configures the monitor.
type Option func(*config) error

type config struct {
	token        string
	exposed      bool // listens beyond loopback
	checkHost    bool // refuse Host headers that are not loopback or allowed
	boundHost    string
	allowedHosts []string
	ownTask      uint64 // the task serving the monitor, which it will not cancel
	blockedAfter time.Duration
}

// DefaultBlockedAfter is how long a task must wait on one primitive before
// the monitor lists it as blocked.
const DefaultBlockedAfter = time.Second

// WithBlockedAfter sets how long a task must wait on the same primitive
// (semaphore, lock, queue, ...) to be listed as blocked (default 1s).
func WithBlockedAfter(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: blocked-after %v; need more than 0", loom.ErrInvalidArgument, d)
		}
		c.blockedAfter = d
		return nil
	}
}

// WithToken sets a token that every request must then carry, as
// "Authorization: Bearer TOKEN" or, for the web page opened once as
// /?token=TOKEN, in a same-site cookie. A monitor that listens beyond
// loopback must have one; on loopback it is optional.
func WithToken(token string) Option {
	return func(c *config) error {
		if token == "" {
			return fmt.Errorf("%w: empty token", loom.ErrInvalidArgument)
		}
		c.token = token
		return nil
	}
}

// WithAllowedHosts adds host names (without port) that requests may name
// in their Host header, besides loopback names and the address the monitor
// listens on: for a monitor behind a proxy or reached by a DNS name. With
// Handler, giving it turns the Host check on.
func WithAllowedHosts(hosts ...string) Option {
	return func(c *config) error {
		for _, h := range hosts {
			if h == "" || strings.ContainsAny(h, ":/ ") {
				return fmt.Errorf("%w: allowed host %q; want a host name without port", loom.ErrInvalidArgument, h)
			}
		}
		c.allowedHosts = append(c.allowedHosts, hosts...)
		c.checkHost = true
		return nil
	}
}

// listenOn records the address the monitor listens on, as Serve knows it:
// whether it is reachable beyond loopback, and its host, which requests
// may name.
func listenOn(addr string) Option {
	return func(c *config) error {
		c.exposed = !isLoopback(addr)
		c.checkHost = true
		c.boundHost, _, _ = net.SplitHostPort(addr)
		return nil
	}
}

// servedBy records the task that serves the monitor, which it refuses to
// cancel.
func servedBy(id uint64) Option {
	return func(c *config) error { c.ownTask = id; return nil }
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Serve runs the monitor on addr (DefaultAddr if empty) until ctx ends.
// On a loopback address it answers only requests whose Host header names
// loopback or that address (or WithAllowedHosts), which defeats DNS
// rebinding; beyond loopback it refuses to start without WithToken
// (ErrNeedToken), and then every request needs the token. Cancel requests
// must carry ActionHeader, and cross-origin ones are refused. The server
// uses ReadHeaderTimeout and IdleTimeout, and on ctx's end waits up to
// ShutdownTimeout for requests in flight. Serve returns the listener's
// error, or nil once ctx ended and the server shut down.
func Serve(ctx context.Context, addr string, opts ...Option) error {
	if ctx == nil {
		return fmt.Errorf("monitor.Serve: %w: nil context", loom.ErrInvalidArgument)
	}
	if addr == "" {
		addr = DefaultAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("monitor.Serve: %w", err)
	}
	return ServeListener(ctx, ln, opts...)
}

// ServeListener is Serve on a listener the caller opened (for example on
// port 0, to learn the port). It closes ln when it returns.
func ServeListener(ctx context.Context, ln net.Listener, opts ...Option) error {
	if ctx == nil {
		ln.Close()
		return fmt.Errorf("monitor.ServeListener: %w: nil context", loom.ErrInvalidArgument)
	}
	addr := ln.Addr().String()
	h, err := newHandler(append([]Option{listenOn(addr), servedBy(loom.TaskID(ctx))}, opts...))
	if err == nil && h.cfg.exposed && h.cfg.token == "" {
		err = fmt.Errorf("monitor.ServeListener on %s: %w", addr, ErrNeedToken)
	}
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: ReadHeaderTimeout, IdleTimeout: IdleTimeout}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-errc
		return nil
	}
}

// Handler returns the monitor as an http.Handler, to mount in a server of
// your own. It does not know where that server listens, so it checks the
// Host header only if WithAllowedHosts is given, and requires a token only
// if WithToken is: guard it yourself otherwise. Cancel requests must carry
// ActionHeader and are refused cross-origin, as with Serve.
func Handler(opts ...Option) (http.Handler, error) {
	return newHandler(opts)
}

type handler struct {
	cfg     config
	mux     *http.ServeMux
	guarded http.Handler // mux behind the cross-origin check
	prom    *prometheus.Registry
}

func newHandler(opts []Option) (*handler, error) {
	h := &handler{mux: http.NewServeMux(), prom: prometheus.NewRegistry(), cfg: config{blockedAfter: DefaultBlockedAfter}}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("monitor: %w: nil option", loom.ErrInvalidArgument)
		}
		if err := o(&h.cfg); err != nil {
			return nil, fmt.Errorf("monitor: %w", err)
		}
	}
	h.prom.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collector{})
	m := h.mux
	m.HandleFunc("GET /{$}", h.index)
	m.Handle("GET /static/", http.FileServerFS(page))
	m.HandleFunc("GET /api/snapshot", h.snapshot)
	m.HandleFunc("GET /api/tasks", h.tasks)
	m.HandleFunc("GET /api/summary", h.summary)
	m.HandleFunc("GET /api/tasks/{id}", h.task)
	m.HandleFunc("GET /api/tasks/{id}/stack", h.stack)
	m.HandleFunc("POST /api/tasks/{id}/cancel", h.cancel)
	// The short forms, as aiomonitor users type them.
	m.HandleFunc("GET /tasks/{id}/stack", h.stack)
	m.HandleFunc("POST /tasks/{id}/cancel", h.cancel)
	m.HandleFunc("GET /api/resources", h.resources)
	m.HandleFunc("GET /api/events", h.events)
	m.HandleFunc("GET /api/runtime", h.runtime)
	m.HandleFunc("GET /api/cpu", h.cpu)
	m.Handle("GET /metrics", promhttp.HandlerFor(h.prom, promhttp.HandlerOpts{}))
	m.HandleFunc("/debug/pprof/", pprof.Index)
	m.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	m.HandleFunc("/debug/pprof/profile", pprof.Profile)
	m.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	m.HandleFunc("/debug/pprof/trace", pprof.Trace)
	h.guarded = http.NewCrossOriginProtection().Handler(m)
	return h, nil
}

// ServeHTTP checks the Host header and the token, then serves the request;
// requests that change state are refused cross-origin (net/http's
// CrossOriginProtection) and without ActionHeader.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.cfg.checkHost && !h.hostAllowed(r.Host) {
		writeError(w, http.StatusForbidden, fmt.Errorf("%w: host %q is not this monitor's; a page on another site may be trying to reach it through DNS rebinding (WithAllowedHosts adds names)", ErrForbidden, r.Host))
		return
	}
	if h.cfg.token != "" {
		if r.Method == http.MethodGet && r.URL.Path == "/" && r.URL.Query().Has("token") && h.tokenIs(r.URL.Query().Get("token")) {
			http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: h.cfg.token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		if !h.carriesToken(r) {
			writeError(w, http.StatusForbidden, fmt.Errorf("%w: missing or wrong token (send Authorization: Bearer TOKEN, or open the page once as /?token=TOKEN)", ErrForbidden))
			return
		}
	}
	h.guarded.ServeHTTP(w, r)
}

// hostAllowed reports whether a Host header names this monitor: a
// loopback name or address, the address it listens on, or an allowed host.
func (h *handler) hostAllowed(hostport string) bool {
	host := hostport
	if hh, _, err := net.SplitHostPort(hostport); err == nil {
		host = hh
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return true
	}
	if h.cfg.boundHost != "" && host == strings.Trim(h.cfg.boundHost, "[]") {
		return true
	}
	for _, a := range h.cfg.allowedHosts {
		if strings.EqualFold(host, a) {
			return true
		}
	}
	return false
}

func (h *handler) tokenIs(got string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(h.cfg.token)) == 1
}

// carriesToken reports whether r has the token, as a bearer token or in
// the page's cookie.
func (h *handler) carriesToken(r *http.Request) bool {
	if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && h.tokenIs(got) {
		return true
	}
	c, err := r.Cookie(tokenCookie)
	return err == nil && h.tokenIs(c.Value)
}

// writeJSON streams v as compact JSON (a snapshot of many tasks is a
// fifth smaller than indented; pipe it to jq to read it).
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func (h *handler) index(w http.ResponseWriter, r *http.Request) {
	b, _ := page.ReadFile("page.html")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b)
}

// Task is a task, group or scope as the API shows it: the registry's
// figures plus its age.
type Task struct {
	registry.Info
	AgeSeconds float64 `json:"age_seconds"`
}

// selectTasks returns the live tasks that pass f, with their ages, and how
// many passed in all.
func selectTasks(f registry.Filter) ([]Task, int) {
	now := time.Now()
	infos, total := registry.Select(f)
	out := make([]Task, len(infos))
	for i, in := range infos {
		out[i] = Task{Info: in, AgeSeconds: now.Sub(in.Created).Seconds()}
	}
	return out, total
}

// DefaultTaskLimit is how many tasks a snapshot or a task list holds
// unless the request asks for another limit (limit=N, 0 for all): past it,
// the answer says how many there are in all, and is truncated.
const DefaultTaskLimit = 1000

// MaxTaskLimit bounds the limit a request may ask for.
const MaxTaskLimit = 1_000_000

// The orders of a task list (sort=).
const (
	SortID     = registry.SortID     // by ID, the oldest first (the default)
	SortNewest = registry.SortNewest // by ID, the newest first
	SortName   = registry.SortName   // by name, then ID
	SortState  = registry.SortState  // by state, then ID
)

// taskFilter reads a request's task filter: limit (default
// DefaultTaskLimit, 0 for no limit), sort (SortID, SortNewest, SortName,
// SortState), after and after_key (the cursor: the last ID of the previous
// page and, in the orders by name and state, its name or state), kind,
// state, name (a prefix) and parent.
func taskFilter(r *http.Request) (registry.Filter, error) {
	q := r.URL.Query()
	f := registry.Filter{Limit: DefaultTaskLimit, Kind: q.Get("kind"), State: q.Get("state"), NamePrefix: q.Get("name"),
		Sort: q.Get("sort"), AfterKey: q.Get("after_key"),
		Done: r.Context().Done()} // a cancelled request stops the walk
	num := func(key string, max uint64) (uint64, bool, error) {
		s := q.Get(key)
		if s == "" {
			return 0, false, nil
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil || v > max {
			return 0, false, fmt.Errorf("monitor: %w: %s=%q; want a number from 0 to %d", loom.ErrInvalidArgument, key, s, max)
		}
		return v, true, nil
	}
	if v, ok, err := num("limit", MaxTaskLimit); err != nil {
		return f, err
	} else if ok {
		f.Limit = int(v)
	}
	var err error
	if f.After, _, err = num("after", math.MaxUint64); err != nil {
		return f, err
	}
	if f.Parent, f.HasParent, err = num("parent", math.MaxUint64); err != nil {
		return f, err
	}
	switch f.Kind {
	case "", "task", "group", "scope":
	default:
		return f, fmt.Errorf("monitor: %w: kind=%q; want task, group or scope", loom.ErrInvalidArgument, f.Kind)
	}
	switch f.State {
	case "", "pending", "running", "done", "failed", "cancelled":
	default:
		return f, fmt.Errorf("monitor: %w: state=%q; want pending, running, done, failed or cancelled", loom.ErrInvalidArgument, f.State)
	}
	switch f.Sort {
	case "", SortID, SortNewest, SortName, SortState:
	default:
		return f, fmt.Errorf("monitor: %w: sort=%q; want %s, %s, %s or %s", loom.ErrInvalidArgument, f.Sort, SortID, SortNewest, SortName, SortState)
	}
	if f.AfterKey != "" && f.Sort != SortName && f.Sort != SortState {
		return f, fmt.Errorf("monitor: %w: after_key is the cursor of sort=%s or sort=%s only", loom.ErrInvalidArgument, SortName, SortState)
	}
	return f, nil
}

// Snapshot is everything the monitor shows, at one moment: what the page
// and loom top poll.
type Snapshot struct {
	Time       time.Time               `json:"time"`
	Tasks      []Task                  `json:"tasks"`
	Terminated []registry.Info         `json:"terminated"`
	Resources  []registry.ResourceInfo `json:"resources"`
	Events     []registry.Event        `json:"events"`
	// Blocked lists the tasks that have waited on one primitive for longer
	// than the blocked-after threshold, longest first.
	Blocked []Blocked `json:"blocked"`
	Runtime Runtime   `json:"runtime"`
	// Totals counts the tasks, groups and scopes started and ended since
	// the process began: the page charts their rates.
	Totals Totals `json:"totals"`
	// TasksTotal is how many live tasks there are; TasksTruncated is set
	// when Tasks holds only the first of them (by ID), as the limit asks.
	TasksTotal     int  `json:"tasks_total"`
	TasksTruncated bool `json:"tasks_truncated"`
	// Counts are the live tasks by kind and state, all of them.
	Counts []Count `json:"counts"`
}

// Count is how many live tasks of one kind are in one state.
type Count struct {
	Kind  string `json:"kind"`
	State string `json:"state"`
	N     int    `json:"n"`
}

// counts returns the live tasks by kind and state, in a stable order.
func counts() []Count {
	var out []Count
	for k, n := range registry.Counts() {
		out = append(out, Count{Kind: k[0], State: k[1], N: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].State < out[j].State
	})
	return out
}

// Totals counts tasks, groups and scopes over the process's life.
type Totals struct {
	Started uint64 `json:"started"`
	Ended   uint64 `json:"ended"`
}

// Blocked is a task waiting on a primitive for long.
type Blocked struct {
	Task           uint64  `json:"task"`
	TaskName       string  `json:"task_name"`
	ResourceID     uint64  `json:"resource_id"`
	Resource       string  `json:"resource"`
	Kind           string  `json:"kind"`
	WaitingSeconds float64 `json:"waiting_seconds"`
}

// TakeSnapshot reads the registry and the Go runtime; tasks that waited
// longer than blockedAfter on one primitive are listed as blocked.
func TakeSnapshot(blockedAfter time.Duration, filters ...registry.Filter) Snapshot {
	f := registry.Filter{}
	if len(filters) > 0 {
		f = filters[0]
	}
	tasks, total := selectTasks(f)
	s := Snapshot{Time: time.Now(), Tasks: tasks, Terminated: registry.Terminated(),
		Resources: registry.Resources(), Events: registry.Events(), Runtime: readRuntime(),
		TasksTotal: total, TasksTruncated: len(tasks) < total, Counts: counts()}
	s.Totals.Started, s.Totals.Ended = registry.Totals()
	names := make(map[uint64]string, len(s.Tasks))
	for _, t := range s.Tasks {
		names[t.ID] = t.Name
	}
	for _, r := range s.Resources {
		for _, w := range r.Waiters {
			if d := s.Time.Sub(w.Since); d >= blockedAfter {
				s.Blocked = append(s.Blocked, Blocked{Task: w.ID, TaskName: names[w.ID], ResourceID: r.ID,
					Resource: r.Name, Kind: r.Kind, WaitingSeconds: d.Seconds()})
			}
		}
	}
	sort.Slice(s.Blocked, func(i, j int) bool { return s.Blocked[i].WaitingSeconds > s.Blocked[j].WaitingSeconds })
	return s
}

// snapshot serves GET /api/snapshot, its tasks filtered and limited as
// taskFilter reads them (DefaultTaskLimit unless the request says).
func (h *handler) snapshot(w http.ResponseWriter, r *http.Request) {
	f, err := taskFilter(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	snap := TakeSnapshot(h.cfg.blockedAfter, f)
	if r.Context().Err() != nil {
		return // the client is gone: its walk stopped early, and nobody reads the answer
	}
	writeJSON(w, http.StatusOK, snap)
}

// TaskPage is one page of GET /api/tasks: the tasks that pass the
// request's filter, in its order, Total of them in all; when Truncated,
// Next is the after= of the next page and, in the orders by name and by
// state, NextKey its after_key=.
type TaskPage struct {
	Tasks      []Task          `json:"tasks"`
	Total      int             `json:"total"`
	Truncated  bool            `json:"truncated"`
	Next       uint64          `json:"next,omitempty"`
	NextKey    string          `json:"next_key,omitempty"`
	Terminated []registry.Info `json:"terminated"`
}

func (h *handler) tasks(w http.ResponseWriter, r *http.Request) {
	f, err := taskFilter(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	ts, total := selectTasks(f)
	p := TaskPage{Tasks: ts, Total: total, Truncated: len(ts) < total, Terminated: registry.Terminated()}
	if p.Truncated && len(ts) > 0 {
		last := ts[len(ts)-1]
		p.Next = last.ID
		switch f.Sort {
		case SortName:
			p.NextKey = last.Name
		case SortState:
			p.NextKey = last.State
		}
	}
	writeJSON(w, http.StatusOK, p)
}

// summary serves GET /api/summary: the live tasks by kind and state, and
// the totals, without a copy of any task: what to poll at scale.
func (h *handler) summary(w http.ResponseWriter, r *http.Request) {
	var t Totals
	t.Started, t.Ended = registry.Totals()
	writeJSON(w, http.StatusOK, map[string]any{"time": time.Now(), "counts": counts(), "totals": t})
}

// liveTask finds the task the request names, or answers 400 or 404 and
// returns false. The query's parent, as a listing showed it, lets
// registry.Lookup walk only the parent's list.
func liveTask(w http.ResponseWriter, r *http.Request) (registry.Found, bool) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		writeError(w, http.StatusBadRequest, fmt.Errorf("monitor: %w: bad task id %q", loom.ErrInvalidArgument, r.PathValue("id")))
		return registry.Found{}, false
	}
	var parent uint64
	if q := r.URL.Query().Get("parent"); q != "" {
		if parent, err = strconv.ParseUint(q, 10, 64); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("monitor: %w: bad parent id %q", loom.ErrInvalidArgument, q))
			return registry.Found{}, false
		}
	}
	n, ok := registry.Lookup(id, parent)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Errorf("monitor: no live task %d", id))
	}
	return n, ok
}

func (h *handler) task(w http.ResponseWriter, r *http.Request) {
	if n, ok := liveTask(w, r); ok {
		in := n.Info
		writeJSON(w, http.StatusOK, Task{Info: in, AgeSeconds: time.Since(in.Created).Seconds()})
	}
}

func (h *handler) cancel(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(ActionHeader) == "" {
		writeError(w, http.StatusForbidden, fmt.Errorf("%w: a cancel request must carry the %s header (a page of another site cannot add it)", ErrCancelRefused, ActionHeader))
		return
	}
	n, ok := liveTask(w, r)
	if !ok {
		return
	}
	id := n.Info.ID
	if id != 0 && id == h.cfg.ownTask {
		writeError(w, http.StatusConflict, fmt.Errorf("%w: task %d serves this monitor; cancelling it would shut the monitor down (stop the program instead)", ErrCancelRefused, id))
		return
	}
	if !n.Cancel(fmt.Errorf("cancelled from the monitor by %s", r.RemoteAddr)) {
		writeError(w, http.StatusConflict, fmt.Errorf("monitor: task %d has no context of its own to cancel (a group member: cancel its group)", id))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"cancelled": id})
}

func (h *handler) resources(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"resources": registry.Resources()})
}

func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"events": registry.Events()})
}

func (h *handler) runtime(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, readRuntime())
}
