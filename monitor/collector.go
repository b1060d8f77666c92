package monitor

import (
	"github.com/prometheus/client_golang/prometheus"

	"loom/internal/registry"
)

// collector exports the registry to Prometheus at scrape time: live tasks
// by kind and state, and every figure of every registered resource as
// loom_resource{kind, name, stat}.
type collector struct{}

var (
	descTasks = prometheus.NewDesc("loom_tasks", "Live tasks, groups and scopes by kind and state.",
		[]string{"kind", "state"}, nil)
	descResource = prometheus.NewDesc("loom_resource", "A figure of a registered loom resource (pool, queue, semaphore, breaker, loop, ...).",
		[]string{"kind", "name", "stat"}, nil)
	descEvents = prometheus.NewDesc("loom_debug_events", "Debug events recorded (unretrieved errors, leaked tasks, slow callbacks, ...), by check.",
		[]string{"check"}, nil)
)

func (collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTasks
	ch <- descResource
	ch <- descEvents
}

func (collector) Collect(ch chan<- prometheus.Metric) {
	type key struct{ kind, state string }
	counts := map[key]int{}
	for _, in := range registry.Snapshot() {
		counts[key{in.Kind, in.State}]++
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(descTasks, prometheus.GaugeValue, float64(n), k.kind, k.state)
	}
	// Two resources may share a kind and a name; Prometheus needs distinct
	// label sets, so the later ones are told apart by their ID.
	seen := map[[3]string]bool{}
	for _, r := range registry.Resources() {
		for _, s := range r.Stats {
			k := [3]string{r.Kind, r.Name, s.Name}
			name := r.Name
			if seen[k] {
				name = r.Name + "#" + itoa(r.ID)
			}
			seen[k] = true
			ch <- prometheus.MustNewConstMetric(descResource, prometheus.GaugeValue, s.Value, r.Kind, name, s.Name)
		}
	}
	checks := map[string]int{}
	for _, ev := range registry.Events() {
		checks[ev.Check]++
	}
	for c, n := range checks {
		ch <- prometheus.MustNewConstMetric(descEvents, prometheus.GaugeValue, float64(n), c)
	}
}

func itoa(u uint64) string {
	if u == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for u > 0 {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
	}
	return string(b[i:])
}
