package monitor

import (
	"bufio"
	"bytes"
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	rpprof "runtime/pprof"
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

//go:embed page.html
var page embed.FS

// DefaultAddr is where Serve listens when given an empty address: loopback
// only, so that nothing outside the machine can see or cancel tasks.
const DefaultAddr = "127.0.0.1:9190"

// ErrCancelRefused is returned (as HTTP 403) for a cancel request that the
// monitor may not honour: it listens on a non-loopback address and either
// has no token or was given the wrong one.
var ErrCancelRefused = errors.New("monitor: cancel refused")

// Option configures the monitor.
type Option func(*config) error

type config struct {
	token        string
	exposed      bool // listens beyond loopback
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

// WithToken sets the token that cancel requests must carry, as
// "Authorization: Bearer TOKEN", when the monitor listens on a non-loopback
// address. Without one, such a monitor refuses every cancel.
func WithToken(token string) Option {
	return func(c *config) error {
		if token == "" {
			return fmt.Errorf("%w: empty token", loom.ErrInvalidArgument)
		}
		c.token = token
		return nil
	}
}

// exposedFor returns an option that records whether the handler will be
// reachable beyond loopback, as Serve knows from its address.
func exposedFor(addr string) Option {
	return func(c *config) error { c.exposed = !isLoopback(addr); return nil }
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

// Serve runs the monitor on addr (DefaultAddr if empty) until ctx ends. It
// refuses to cancel tasks from a non-loopback address unless WithToken was
// given. The listening address is logged by the caller; Serve returns the
// listener's error, or nil once ctx ended and the server shut down.
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
// port 0, to learn the port).
func ServeListener(ctx context.Context, ln net.Listener, opts ...Option) error {
	h, err := newHandler(append([]Option{exposedFor(ln.Addr().String())}, opts...))
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-errc
		return nil
	}
}

// Handler returns the monitor as an http.Handler, to mount in a server of
// your own: it then treats every client as local, so guard it yourself or
// give WithToken (which then is required for cancel).
func Handler(opts ...Option) (http.Handler, error) {
	return newHandler(opts)
}

type handler struct {
	cfg  config
	mux  *http.ServeMux
	prom *prometheus.Registry
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
	m.HandleFunc("GET /api/snapshot", h.snapshot)
	m.HandleFunc("GET /api/tasks", h.tasks)
	m.HandleFunc("GET /api/tasks/{id}", h.task)
	m.HandleFunc("GET /api/tasks/{id}/stack", h.stack)
	m.HandleFunc("POST /api/tasks/{id}/cancel", h.cancel)
	// The short forms, as aiomonitor users type them.
	m.HandleFunc("GET /tasks/{id}/stack", h.stack)
	m.HandleFunc("POST /tasks/{id}/cancel", h.cancel)
	m.HandleFunc("GET /api/resources", h.resources)
	m.HandleFunc("GET /api/events", h.events)
	m.HandleFunc("GET /api/runtime", h.runtime)
	m.Handle("GET /metrics", promhttp.HandlerFor(h.prom, promhttp.HandlerOpts{}))
	m.HandleFunc("/debug/pprof/", pprof.Index)
	m.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	m.HandleFunc("/debug/pprof/profile", pprof.Profile)
	m.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	m.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return h, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
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

func tasksNow() []Task {
	now := time.Now()
	infos := registry.Snapshot()
	out := make([]Task, len(infos))
	for i, in := range infos {
		out[i] = Task{Info: in, AgeSeconds: now.Sub(in.Created).Seconds()}
	}
	return out
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
func TakeSnapshot(blockedAfter time.Duration) Snapshot {
	s := Snapshot{Time: time.Now(), Tasks: tasksNow(), Terminated: registry.Terminated(),
		Resources: registry.Resources(), Events: registry.Events(), Runtime: readRuntime()}
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

func (h *handler) snapshot(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, TakeSnapshot(h.cfg.blockedAfter))
}

func (h *handler) tasks(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"tasks": tasksNow(), "terminated": registry.Terminated()})
}

// liveTask finds the task the request names, or answers 400 or 404 and
// returns false.
func liveTask(w http.ResponseWriter, r *http.Request) (registry.Found, bool) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		writeError(w, http.StatusBadRequest, fmt.Errorf("monitor: %w: bad task id %q", loom.ErrInvalidArgument, r.PathValue("id")))
		return registry.Found{}, false
	}
	n, ok := registry.Lookup(id)
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

// stack returns the stacks of the goroutines labelled with the task's name
// (pprof label loom.task, loom.group or loom.scope): names are not unique,
// so every goroutine of that name is shown.
func (h *handler) stack(w http.ResponseWriter, r *http.Request) {
	n, ok := liveTask(w, r)
	if !ok {
		return
	}
	in := n.Info
	if in.Name == "" {
		writeError(w, http.StatusNotFound, fmt.Errorf("monitor: task %d has no name, so its goroutine carries no label to find it by", in.ID))
		return
	}
	stacks := stacksLabelled(fmt.Sprintf("%q:%q", "loom."+in.Kind, in.Name))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if stacks == "" {
		fmt.Fprintf(w, "no goroutine is running %s %q now (it may be queued or finishing)\n", in.Kind, in.Name)
		return
	}
	_, _ = w.Write([]byte(stacks))
}

// stacksLabelled returns the goroutine-profile records whose labels
// contain label.
func stacksLabelled(label string) string {
	var buf bytes.Buffer
	_ = rpprof.Lookup("goroutine").WriteTo(&buf, 1)
	var out strings.Builder
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var rec []string
	flush := func() {
		for _, l := range rec {
			if strings.HasPrefix(l, "# labels:") && strings.Contains(l, label) {
				out.WriteString(strings.Join(rec, "\n"))
				out.WriteString("\n\n")
				break
			}
		}
		rec = rec[:0]
	}
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			flush()
			continue
		}
		rec = append(rec, line)
	}
	flush()
	return out.String()
}

func (h *handler) cancel(w http.ResponseWriter, r *http.Request) {
	if err := h.authorize(r); err != nil {
		writeError(w, http.StatusForbidden, err)
		return
	}
	n, ok := liveTask(w, r)
	if !ok {
		return
	}
	id := n.Info.ID
	if !n.Cancel(fmt.Errorf("cancelled from the monitor by %s", r.RemoteAddr)) {
		writeError(w, http.StatusConflict, fmt.Errorf("monitor: task %d has no context of its own to cancel (a group member: cancel its group)", id))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"cancelled": id})
}

// authorize applies the cancel rule: a monitor reachable beyond loopback
// needs a token, and the request must carry it.
func (h *handler) authorize(r *http.Request) error {
	if h.cfg.token == "" {
		if h.cfg.exposed {
			return fmt.Errorf("%w: the monitor listens on a non-loopback address and has no token (start it with a token to allow cancel)", ErrCancelRefused)
		}
		return nil
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(h.cfg.token)) != 1 {
		return fmt.Errorf("%w: missing or wrong token", ErrCancelRefused)
	}
	return nil
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
