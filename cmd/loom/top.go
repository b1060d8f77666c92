package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/spf13/cobra"

	"loom/internal/registry"
	"loom/monitor"
)

func newTop() *cobra.Command {
	var once, asJSON bool
	var interval time.Duration
	var token string
	cmd := &cobra.Command{
		Use:   "top [ADDR]",
		Short: "Watch a running program's tasks, pools, loops and breakers (like tokio-console)",
		Long: `top connects to a loom monitor (default ` + monitor.DefaultAddr + `) and shows its
tasks as a live, sortable list, with a detail view (stack) and cancel, and
views of the pools, queues, primitives, policies and loops. With --once it
prints one snapshot, as text or --json, for scripts.

Keys: up/down (j/k) move, PgUp/PgDn page, g/G top and end, / filter by
name, t the tree of who started whom, s change sort, enter details and
stack, p CPU time by task name (sampled for 2s), c cancel the selected
task (asks first), tab switch view, esc back, q quit. The selected task stays selected across refreshes.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr := monitor.DefaultAddr
			if len(args) == 1 {
				addr = args[0]
			}
			if interval <= 0 {
				return fmt.Errorf("--interval must be positive")
			}
			base := addr
			if !strings.Contains(base, "://") {
				base = "http://" + base
			}
			c := &topClient{base: strings.TrimRight(base, "/"), token: token, http: newHTTPClient()}
			if once {
				snap, err := c.snapshot(cmd.Context(), monitor.SortID)
				if err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					return enc.Encode(snap)
				}
				printSnapshot(cmd.OutOrStdout(), c.base, snap)
				return nil
			}
			m := newTopModel(c, interval)
			_, err := tea.NewProgram(m, tea.WithAltScreen(), tea.WithContext(cmd.Context())).Run()
			if err == tea.ErrProgramKilled && cmd.Context().Err() != nil {
				return nil
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&once, "once", false, "print one snapshot and exit")
	cmd.Flags().BoolVar(&asJSON, "json", false, "with --once, print the snapshot as JSON")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "refresh interval")
	cmd.Flags().StringVar(&token, "token", "", "the monitor's token (required when it listens beyond loopback)")
	return cmd
}

func newHTTPClient() *http.Client { return &http.Client{Timeout: 5 * time.Second} }

// topClient talks to a monitor.
type topClient struct {
	base  string
	token string
	http  *http.Client
}

// request makes a request to the monitor, with the token if there is one.
func (c *topClient) request(ctx context.Context, method, path string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err == nil && c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, err
}

// snapshot fetches the monitor's snapshot, its tasks in the order sort
// names (a monitor.Sort* order): when the program has more tasks than a
// snapshot holds, the server's order decides which are in it.
func (c *topClient) snapshot(ctx context.Context, sort string) (monitor.Snapshot, error) {
	var snap monitor.Snapshot
	req, err := c.request(ctx, "GET", "/api/snapshot?sort="+sort)
	if err != nil {
		return snap, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			// A monitor that is there but slow (a very large snapshot):
			// say so, rather than that there is none.
			return snap, fmt.Errorf("the monitor at %s did not answer within %v: %w", c.base, c.http.Timeout, err)
		}
		return snap, fmt.Errorf("no monitor at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return snap, fmt.Errorf("monitor at %s: %s", c.base, resp.Status)
	}
	if err := json.NewDecoder(bounded(resp.Body)).Decode(&snap); err != nil {
		return snap, fmt.Errorf("reading the monitor's snapshot: %w", err)
	}
	return snap, nil
}

// MaxAnswerBytes bounds what loom top reads of one answer of the monitor
// (a snapshot, a stack, a profile): the default snapshot is under 1 MiB
// even at a million tasks, and the stacks of every goroutine of one name
// fit many times over.
const MaxAnswerBytes = 64 << 20

// bounded reads r up to MaxAnswerBytes, and fails with a clear error past
// it rather than read without end.
func bounded(r io.Reader) io.Reader { return &boundedReader{r: r, left: MaxAnswerBytes} }

type boundedReader struct {
	r    io.Reader
	left int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		if n, err := b.r.Read(one[:]); n == 0 {
			return 0, err
		}
		return 0, fmt.Errorf("the monitor's answer is longer than MaxAnswerBytes (%d MiB)", MaxAnswerBytes>>20)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

// answerError describes a monitor's answer that is not 200 OK: its status
// and the error its JSON body gives (the first 64 KiB of it).
func answerError(resp *http.Response) string {
	var e struct{ Error string }
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&e)
	return resp.Status + ": " + e.Error
}

// cpu samples the program's CPU for d and returns its time by task name.
func (c *topClient) cpu(ctx context.Context, d time.Duration) (monitor.CPUProfile, error) {
	var p monitor.CPUProfile
	req, err := c.request(ctx, "GET", fmt.Sprintf("/api/cpu?seconds=%g", d.Seconds()))
	if err != nil {
		return p, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return p, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return p, fmt.Errorf("monitor: %s", answerError(resp))
	}
	return p, json.NewDecoder(bounded(resp.Body)).Decode(&p)
}

// stack returns the stack of task id, whose parent (from the listing)
// lets the monitor find it without walking the registry.
func (c *topClient) stack(ctx context.Context, id, parent uint64) (string, error) {
	req, err := c.request(ctx, "GET", fmt.Sprintf("/api/tasks/%d/stack?parent=%d", id, parent))
	if err != nil {
		return "", err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(bounded(resp.Body))
	return string(b), err
}

// cancel cancels task id, whose parent is as for stack.
func (c *topClient) cancel(ctx context.Context, id, parent uint64) error {
	req, err := c.request(ctx, "POST", fmt.Sprintf("/api/tasks/%d/cancel?parent=%d", id, parent))
	if err != nil {
		return err
	}
	req.Header.Set(monitor.ActionHeader, "cancel")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(answerError(resp))
	}
	return nil
}

func ageString(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d >= time.Hour:
		return fmt.Sprintf("%.1fh", d.Hours())
	case d >= time.Minute:
		return fmt.Sprintf("%.1fm", d.Minutes())
	}
	return d.Round(time.Millisecond).String()
}

// printSnapshot writes a snapshot as text, for --once.
func printSnapshot(out io.Writer, base string, s monitor.Snapshot) {
	rt := s.Runtime
	fmt.Fprintf(out, "loom top  %s  %s  goroutines %d  sched latency p99 %v  gc pause p99 %v\n\n",
		base, s.Time.Format(time.TimeOnly), rt.Goroutines, rt.SchedLatencyP99, rt.GCPauseP99)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "TASKS (%d live)\n", len(s.Tasks))
	fmt.Fprintln(tw, "  ID\tKIND\tSTATE\tAGE\tPARENT\tNAME\tWHERE")
	for _, t := range s.Tasks {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%d\t%s\t%s\n", t.ID, t.Kind, t.State, ageString(t.AgeSeconds), t.Parent, t.Name, t.Location)
	}
	tw.Flush()
	if len(s.Blocked) > 0 {
		fmt.Fprintf(tw, "\nBLOCKED (%d waiting long on one primitive)\n", len(s.Blocked))
		fmt.Fprintln(tw, "  TASK\tNAME\tWAITING ON\tFOR")
		for _, b := range s.Blocked {
			fmt.Fprintf(tw, "  %d\t%s\t%s %s\t%s\n", b.Task, b.TaskName, b.Kind, b.Resource, ageString(b.WaitingSeconds))
		}
		tw.Flush()
	}
	fmt.Fprintf(tw, "\nRESOURCES (%d)\n", len(s.Resources))
	fmt.Fprintln(tw, "  ID\tKIND\tNAME\tFIGURES\tWAITING")
	for _, r := range s.Resources {
		stats := figures(r.Stats)
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%v\n", r.ID, r.Kind, r.Name, strings.Join(stats, " "), waiterIDs(r.Waiters))
		for _, p := range r.Parts {
			fmt.Fprintf(tw, "  \t\t  %s\t%s\t\n", p.Name, partLine(p))
		}
	}
	tw.Flush()
	fmt.Fprintf(tw, "\nRECENT TERMINATIONS (%d)\n", len(s.Terminated))
	fmt.Fprintln(tw, "  ID\tKIND\tSTATE\tNAME\tERROR")
	for _, t := range s.Terminated[:min(len(s.Terminated), 20)] {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%.70s\n", t.ID, t.Kind, t.State, t.Name, oneLine(t.Err))
	}
	tw.Flush()
	if len(s.Events) > 0 {
		fmt.Fprintf(out, "\nDEBUG EVENTS (%d)\n", len(s.Events))
		for _, e := range s.Events[max(0, len(s.Events)-10):] {
			fmt.Fprintf(out, "  %s  %s  %s\n", e.Time.Format(time.TimeOnly), e.Check, e.Message)
		}
	}
}

// figures formats a resource's figures for the screen: an enum by its
// value's name; histograms left out (their quantiles are figures too).
func figures(stats []registry.Stat) []string {
	out := make([]string, 0, len(stats))
	for _, st := range stats {
		switch {
		case st.Type == registry.Histogram:
		case st.Type == registry.Enum && int(st.Value) >= 0 && int(st.Value) < len(st.Values):
			out = append(out, st.Name+"="+st.Values[int(st.Value)])
		default:
			out = append(out, fmt.Sprintf("%s=%.4g", st.Name, st.Value))
		}
	}
	return out
}

// partLine formats a resource's part: its state and figures.
func partLine(p registry.Part) string {
	return strings.Join(append([]string{strings.ToUpper(p.State)}, figures(p.Stats)...), " ")
}

func waiterIDs(ws []registry.Waiter) []uint64 {
	ids := make([]uint64, len(ws))
	for i, w := range ws {
		ids[i] = w.ID
	}
	return ids
}

// oneLine flattens a multi-line error (a joined error, a panic with its
// stack) for a table row.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// The interactive view.

type (
	snapMsg struct {
		snap monitor.Snapshot
		err  error
		took time.Duration
		// extra marks a poll outside the polling rhythm (after a
		// cancel): it schedules no next poll, or there would be two.
		extra bool
	}
	stackMsg  string
	cancelMsg struct {
		id  uint64
		err error
	}
	tickMsg struct{}
	cpuMsg  struct {
		p   monitor.CPUProfile
		err error
	}
)

// cpuSampling is how long p samples the CPU.
const cpuSampling = 2 * time.Second

const (
	viewTasks = iota
	viewResources
	viewEvents
	viewCount
)

var sortNames = []string{"id", "age", "state", "name"}

// serverSort is the monitor's order for each of sortNames: the oldest
// tasks (by age) are those with the smallest IDs.
var serverSort = []string{monitor.SortID, monitor.SortID, monitor.SortState, monitor.SortName}

// maxInterval bounds the wait between polls after errors or slow answers.
const maxInterval = 30 * time.Second

type topModel struct {
	c        *topClient
	interval time.Duration // asked for
	next     time.Duration // the wait before the next poll: longer after errors and slow answers
	snap     monitor.Snapshot
	err      error
	view     int
	sortBy   int
	tree     bool      // tasks as the tree of who started whom
	filter   string    // tasks whose name contains it
	editing  bool      // typing the filter
	list     []listRow // the tasks as shown: sorted or as a tree, filtered; made once per change
	selected uint64    // the selected task's ID, kept across refreshes
	cursor   int       // its row in list
	offset   int       // the first row on screen
	detail   *monitor.Task
	stack    string
	cpu      *monitor.CPUProfile // the last CPU sampling, shown until esc
	confirm  bool
	status   string
	width    int
	height   int
}

// listRow is a task as the list shows it, with its depth in the tree.
type listRow struct {
	t     monitor.Task
	depth int
}

func newTopModel(c *topClient, interval time.Duration) *topModel {
	return &topModel{c: c, interval: interval, next: interval, height: 40, width: 120}
}

// fetch returns the command that polls the monitor once, in the order
// chosen now (the command runs on a goroutine of its own, so it must not
// read the model).
func (m *topModel) fetch() tea.Cmd {
	c, sort := m.c, serverSort[m.sortBy]
	return func() tea.Msg {
		start := time.Now()
		snap, err := c.snapshot(context.Background(), sort)
		return snapMsg{snap: snap, err: err, took: time.Since(start)}
	}
}

func (m *topModel) Init() tea.Cmd { return m.fetch() }

// tasks returns the tasks as the list shows them.
func (m *topModel) tasks() []monitor.Task {
	out := make([]monitor.Task, len(m.list))
	for i, r := range m.list {
		out[i] = r.t
	}
	return out
}

// relist rebuilds the list after a new snapshot or a change of sort,
// filter or view, and keeps the selected task selected.
func (m *topModel) relist() {
	ts := make([]monitor.Task, 0, len(m.snap.Tasks))
	for _, t := range m.snap.Tasks {
		if m.filter == "" || strings.Contains(strings.ToLower(t.Name), strings.ToLower(m.filter)) {
			ts = append(ts, t)
		}
	}
	sort.SliceStable(ts, func(i, j int) bool {
		switch sortNames[m.sortBy] {
		case "age":
			return ts[i].AgeSeconds > ts[j].AgeSeconds
		case "state":
			return ts[i].State < ts[j].State
		case "name":
			return ts[i].Name < ts[j].Name
		}
		return ts[i].ID < ts[j].ID
	})
	m.list = m.list[:0]
	if m.tree {
		m.list = treeOrder(ts, m.list)
	} else {
		for _, t := range ts {
			m.list = append(m.list, listRow{t: t})
		}
	}
	m.cursor = min(m.cursor, max(len(m.list)-1, 0))
	for i, r := range m.list {
		if r.t.ID == m.selected {
			m.cursor = i
			break
		}
	}
	m.follow()
}

// treeOrder appends ts to out in the order of the tree: each task under
// the one it belongs to, in the sort order among siblings.
func treeOrder(ts []monitor.Task, out []listRow) []listRow {
	ids := make(map[uint64]bool, len(ts))
	for _, t := range ts {
		ids[t.ID] = true
	}
	children := map[uint64][]monitor.Task{}
	for _, t := range ts {
		p := t.Parent
		if !ids[p] {
			p = 0
		}
		children[p] = append(children[p], t)
	}
	var walk func(p uint64, depth int)
	walk = func(p uint64, depth int) {
		for _, t := range children[p] {
			out = append(out, listRow{t: t, depth: depth})
			walk(t.ID, depth+1)
		}
	}
	walk(0, 0)
	return out
}

// follow records the task under the cursor as the selected one and
// scrolls so that it is on screen.
func (m *topModel) follow() {
	if m.cursor < len(m.list) {
		m.selected = m.list[m.cursor].t.ID
	}
	rows := m.rows()
	if m.cursor < m.offset {
		m.offset = m.cursor
	}
	if m.cursor >= m.offset+rows {
		m.offset = m.cursor - rows + 1
	}
	m.offset = max(min(m.offset, len(m.list)-rows), 0)
}

// rows is how many list rows fit on the screen.
func (m *topModel) rows() int { return max(m.height-8, 3) }

func (m *topModel) move(delta int) {
	m.cursor = max(min(m.cursor+delta, len(m.list)-1), 0)
	m.follow()
}

func (m *topModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.follow()
	case snapMsg:
		if msg.extra {
			if msg.err == nil {
				m.snap = msg.snap
				m.relist()
			}
			return m, nil
		}
		m.err = msg.err
		if msg.err == nil {
			m.snap = msg.snap
			m.relist()
			// Poll again after the interval, or four times as long as the
			// answer took if that is longer: a slow monitor is not flooded.
			m.next = min(max(m.interval, 4*msg.took), maxInterval)
		} else {
			m.next = min(2*m.next, maxInterval)
		}
		return m, tea.Tick(m.next, func(time.Time) tea.Msg { return tickMsg{} })
	case tickMsg:
		return m, m.fetch()
	case stackMsg:
		m.stack = string(msg)
	case cpuMsg:
		if msg.err != nil {
			m.status = "CPU sampling: " + msg.err.Error()
		} else {
			m.cpu, m.status = &msg.p, ""
		}
	case cancelMsg:
		if msg.err != nil {
			m.status = fmt.Sprintf("cancel %d: %v", msg.id, msg.err)
		} else {
			m.status = fmt.Sprintf("cancelled task %d", msg.id)
		}
		poll := m.fetch()
		return m, func() tea.Msg {
			msg := poll().(snapMsg)
			msg.extra = true
			return msg
		}
	case tea.KeyMsg:
		if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 {
			// Keys typed faster than the terminal is read arrive as one
			// message ("/needle"): take them one by one.
			var cmds []tea.Cmd
			for _, r := range msg.Runes {
				_, cmd := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
				cmds = append(cmds, cmd)
			}
			return m, tea.Batch(cmds...)
		}
		if m.editing {
			return m.editFilter(msg)
		}
		return m.key(msg.String())
	}
	return m, nil
}

// editFilter takes the keys typed after "/": the filter applies as it is
// typed; enter keeps it, esc clears it.
func (m *topModel) editFilter(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	switch k.Type {
	case tea.KeyEnter:
		m.editing = false
	case tea.KeyEsc:
		m.editing, m.filter = false, ""
	case tea.KeyBackspace:
		if r := []rune(m.filter); len(r) > 0 {
			m.filter = string(r[:len(r)-1])
		}
	case tea.KeyRunes, tea.KeySpace:
		if len(m.filter) < 200 {
			m.filter += string(k.Runes)
		}
	case tea.KeyCtrlC:
		return m, tea.Quit
	}
	m.relist()
	return m, nil
}

func (m *topModel) key(k string) (tea.Model, tea.Cmd) {
	if m.confirm {
		m.confirm = false
		if k == "y" && m.detail != nil {
			id, parent := m.detail.ID, m.detail.Parent
			return m, func() tea.Msg { return cancelMsg{id, m.c.cancel(context.Background(), id, parent)} }
		}
		m.status = "not cancelled"
		return m, nil
	}
	switch k {
	case "q", "ctrl+c":
		return m, tea.Quit
	case "tab":
		m.view = (m.view + 1) % viewCount
		m.detail = nil
	case "s":
		m.sortBy = (m.sortBy + 1) % len(sortNames)
		m.relist()
	case "t":
		m.tree = !m.tree
		m.relist()
	case "/":
		m.view, m.detail, m.editing = viewTasks, nil, true
	case "up", "k":
		m.move(-1)
	case "down", "j":
		m.move(1)
	case "pgup", "ctrl+b":
		m.move(-m.rows())
	case "pgdown", "ctrl+f", " ":
		m.move(m.rows())
	case "home", "g":
		m.move(-len(m.list))
	case "end", "G":
		m.move(len(m.list))
	case "esc":
		m.detail, m.stack, m.cpu = nil, "", nil
	case "p":
		m.status = fmt.Sprintf("sampling the CPU for %v…", cpuSampling)
		return m, func() tea.Msg {
			p, err := m.c.cpu(context.Background(), cpuSampling)
			return cpuMsg{p, err}
		}
	case "enter":
		if m.view == viewTasks && m.cursor < len(m.list) {
			t := m.list[m.cursor].t
			m.detail, m.stack = &t, "loading…"
			return m, func() tea.Msg {
				s, err := m.c.stack(context.Background(), t.ID, t.Parent)
				if err != nil {
					s = err.Error()
				}
				return stackMsg(s)
			}
		}
	case "c":
		if m.view == viewTasks {
			if m.detail == nil && m.cursor < len(m.list) {
				t := m.list[m.cursor].t
				m.detail = &t
			}
			if m.detail != nil {
				m.confirm = true
				m.status = fmt.Sprintf("cancel task %d %q? (y/n)", m.detail.ID, m.detail.Name)
			}
		}
	}
	return m, nil
}

// footer is the last line: the keys.
const footer = "↑↓/jk move  PgUp/PgDn page  g/G top/end  / filter  t tree  s sort  enter stack  p CPU  c cancel  tab view  esc back  q quit"

func (m *topModel) View() string {
	var b strings.Builder
	rt := m.snap.Runtime
	mode := "list"
	if m.tree {
		mode = "tree"
	}
	fmt.Fprintf(&b, "loom top  %s  goroutines %d  sched p99 %v  gc p99 %v  [%s]  %s, sort: %s\n",
		m.c.base, rt.Goroutines, rt.SchedLatencyP99, rt.GCPauseP99,
		[]string{"tasks", "resources", "events"}[m.view], mode, sortNames[m.sortBy])
	switch {
	case m.err != nil:
		fmt.Fprintf(&b, "error: %v (again in %v)\n", m.err, m.next)
	case m.editing || m.filter != "":
		cursor := ""
		if m.editing {
			cursor = "_"
		}
		fmt.Fprintf(&b, "filter: %s%s  (%d of %d tasks)\n", m.filter, cursor, len(m.list), len(m.snap.Tasks))
	case m.status != "":
		fmt.Fprintln(&b, m.status)
	default:
		b.WriteString("\n")
	}
	if n := len(m.snap.Blocked); n > 0 {
		bl := m.snap.Blocked[0]
		fmt.Fprintf(&b, "%d blocked; longest: task %d %q on %s %q for %s\n", n, bl.Task, bl.TaskName, bl.Kind, bl.Resource, ageString(bl.WaitingSeconds))
	} else {
		b.WriteString("\n")
	}
	rows := m.rows()
	switch {
	case m.cpu != nil:
		fmt.Fprintf(&b, "CPU by task name, sampled for %v (%.2f s of CPU)\n", m.cpu.Period.Round(time.Millisecond), m.cpu.Seconds)
		fmt.Fprintf(&b, "  %-7s %-9s %-6s %s\n", "SHARE", "CPU", "KIND", "NAME")
		for _, sh := range m.cpu.Shares[:min(len(m.cpu.Shares), rows)] {
			name, kind := sh.Name, sh.Kind
			if kind == "" {
				name, kind = "(not a loom task: runtime, monitor, plain goroutines)", "-"
			}
			fmt.Fprintf(&b, "  %5.1f%%  %-9s %-6s %s\n", 100*sh.Share, time.Duration(sh.Seconds*float64(time.Second)).Round(time.Millisecond), kind, name)
		}
	case m.detail != nil && m.view == viewTasks:
		t := m.detail
		fmt.Fprintf(&b, "task %d  %s %q  state %s  age %s  parent %d\ncreated at %s\n\n%s\n",
			t.ID, t.Kind, t.Name, t.State, ageString(t.AgeSeconds), t.Parent, t.Location, m.stack)
	case m.view == viewTasks:
		fmt.Fprintf(&b, "  %-8s %-6s %-10s %-9s %-28s %s\n", "ID", "KIND", "STATE", "AGE", "NAME", "WHERE")
		end := min(m.offset+rows, len(m.list))
		for i := m.offset; i < end; i++ {
			r := m.list[i]
			mark := " "
			if i == m.cursor {
				mark = ">"
			}
			name := strings.Repeat("  ", min(r.depth, 8)) + r.t.Name
			fmt.Fprintf(&b, "%s %-8d %-6s %-10s %-9s %-28.28s %s\n", mark, r.t.ID, r.t.Kind, r.t.State, ageString(r.t.AgeSeconds), name, r.t.Location)
		}
		more := ""
		if m.snap.TasksTruncated {
			more = fmt.Sprintf(" (the monitor sent the first %d of %d live tasks)", len(m.snap.Tasks), m.snap.TasksTotal)
		}
		fmt.Fprintf(&b, "  rows %d-%d of %d%s\n", min(m.offset+1, end), end, len(m.list), more)
	case m.view == viewResources:
		for _, r := range m.snap.Resources[:min(len(m.snap.Resources), rows)] {
			stats := figures(r.Stats)
			fmt.Fprintf(&b, "  %-6d %-12s %-20.20s %s\n", r.ID, r.Kind, r.Name, strings.Join(stats, " "))
			for _, p := range r.Parts {
				fmt.Fprintf(&b, "  %-6s %-12s   %-18.18s %s\n", "", "", p.Name, partLine(p))
			}
		}
	default:
		for _, e := range m.snap.Events[max(0, len(m.snap.Events)-rows):] {
			fmt.Fprintf(&b, "  %s  %-16s %s\n", e.Time.Format(time.TimeOnly), e.Check, e.Message)
		}
	}
	b.WriteString(footer)
	return b.String()
}
