package monitor

import (
	"fmt"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"loom"
	"loom/internal/registry"
)

// MaxNamesPerKind bounds the resources of one kind that /metrics
// exports: resource names are user input, and a program that makes a
// named pool per request would otherwise grow the scrape without end. The
// oldest MaxNamesPerKind of each kind are exported; the others are
// counted in loom_monitor_resources_omitted (the JSON snapshot still has
// them all).
const MaxNamesPerKind = 100

// collector exports the registry to Prometheus at scrape time, one
// metric per meaning: loom_<kind>_<figure> with a name label, counters
// ending in _total, durations as histograms in seconds, a breaker's state
// as loom_breaker_state{state} (1 for the current one); live tasks by
// kind and state as loom_tasks; recent debug events by check. Figures for
// people only (quantiles, which the histograms give) are not exported.
//
// The set of metrics depends on what is registered, so the collector is
// unchecked (Describe sends nothing).
type collector struct{}

var (
	descTasks = prometheus.NewDesc("loom_tasks", "Live loom tasks, groups and scopes, by kind and state.",
		[]string{"kind", "state"}, nil)
	descEvents = prometheus.NewDesc("loom_debug_events_recent", "Debug events among the last 256 recorded (unretrieved errors, leaked tasks, slow callbacks, wrong-thread calls), by check.",
		[]string{"check"}, nil)
	descOmitted = prometheus.NewDesc("loom_monitor_resources_omitted", "Registered resources left out of /metrics because their kind has more than MaxNamesPerKind names.",
		[]string{"kind"}, nil)
)

// Describe sends nothing: the collector is unchecked.
func (collector) Describe(chan<- *prometheus.Desc) {}

// Collect sends the registry's figures.
func (collector) Collect(ch chan<- prometheus.Metric) {
	type key struct{ kind, state string }
	counts := map[key]int{}
	// Every kind and state, 0 where none: a dashboard's series do not
	// come and go.
	for _, kind := range []string{"task", "group", "scope"} {
		for _, st := range []loom.State{loom.Pending, loom.Running, loom.Done, loom.Failed, loom.Cancelled} {
			counts[key{kind, st.String()}] = 0
		}
	}
	for k, n := range registry.Counts() {
		counts[key{k[0], k[1]}] += n
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(descTasks, prometheus.GaugeValue, float64(n), k.kind, k.state)
	}
	checks := map[string]int{loom.CheckUnretrievedError: 0, loom.CheckLeakedTask: 0, loom.CheckSlowCallback: 0, loom.CheckWrongThread: 0}
	for _, ev := range registry.Events() {
		checks[ev.Check]++
	}
	for c, n := range checks {
		ch <- prometheus.MustNewConstMetric(descEvents, prometheus.GaugeValue, float64(n), validUTF8(c))
	}
	collectResources(ch, registry.Resources())
}

// collectResources sends the figures of resources (sorted by ID, oldest
// first), at most MaxNamesPerKind names per kind.
func collectResources(ch chan<- prometheus.Metric, resources []registry.ResourceInfo) {
	descs := map[string]*prometheus.Desc{}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		d := descs[name]
		if d == nil {
			d = prometheus.NewDesc(name, help, labels, nil)
			descs[name] = d
		}
		return d
	}
	names := map[string]map[string]bool{} // kind -> names exported
	omitted := map[string]int{}
	for _, r := range resources {
		kind := metricToken(r.Kind)
		if names[kind] == nil {
			names[kind] = map[string]bool{}
		}
		// Two resources of a kind may share a name; Prometheus needs
		// distinct label sets, so the later ones get their ID.
		label := validUTF8(r.Name)
		if names[kind][label] {
			label = fmt.Sprintf("%s#%d", label, r.ID)
		}
		if len(names[kind]) >= MaxNamesPerKind {
			omitted[kind]++
			continue
		}
		names[kind][label] = true
		for _, s := range r.Stats {
			base := "loom_" + kind + "_" + metricToken(s.Name)
			help := fmt.Sprintf("The %q figure of each loom %s.", s.Name, r.Kind)
			switch s.Type {
			case registry.Display:
			case registry.Counter:
				if !strings.HasSuffix(base, "_total") {
					base += "_total"
				}
				ch <- prometheus.MustNewConstMetric(desc(base, help, "name"), prometheus.CounterValue, s.Value, label)
			case registry.Histogram:
				if s.Hist != nil {
					ch <- histogram(desc(base, help, "name"), *s.Hist, label)
				}
			case registry.Enum:
				d := desc(base, help+" 1 for the current value, 0 for the others.", "name", s.Name)
				for i, v := range s.Values {
					on := 0.0
					if i == int(s.Value) {
						on = 1
					}
					ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, on, label, validUTF8(v))
				}
			default:
				ch <- prometheus.MustNewConstMetric(desc(base, help, "name"), prometheus.GaugeValue, s.Value, label)
			}
		}
	}
	kinds := make([]string, 0, len(omitted))
	for k := range omitted {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		ch <- prometheus.MustNewConstMetric(descOmitted, prometheus.GaugeValue, float64(omitted[k]), k)
	}
}

// histogram turns a registry histogram into a Prometheus one, with
// cumulative buckets (the +Inf bucket is the count).
func histogram(d *prometheus.Desc, h registry.Hist, label string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	var cum uint64
	for i, c := range h.Counts {
		cum += c
		if i < len(h.Bounds) {
			buckets[h.Bounds[i]] = cum
		}
	}
	return prometheus.MustNewConstHistogram(d, cum, h.Sum, buckets, label)
}

// metricToken makes s a part of a metric name: lower-case letters, digits
// and underscores ("dist-queue" becomes "dist_queue").
func metricToken(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '_'
	}, s)
}

// validUTF8 makes s a valid label value.
func validUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
