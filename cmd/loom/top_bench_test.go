package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"loom/internal/scale"
	"loom/monitor"
)

// BenchmarkTopInput measures how long loom top takes to answer a key, and
// to take in a new snapshot, with 100,000 live tasks in the program it
// watches (1,000 groups of 100; -short: 10,000): the key's Update and the
// View that redraws the screen, what stands between a key press and the
// new screen; and one poll. The snapshot holds the monitor's default
// limit of tasks whatever the total, so the figures do not grow with the
// program.
func BenchmarkTopInput(b *testing.B) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	load, err := scale.Watch(n, "top-scale", "top-scale-task", func(ctx context.Context) error { <-ctx.Done(); return nil })
	if err != nil {
		b.Fatal(err)
	}
	defer load.Close()
	c := &topClient{base: load.URL, http: newHTTPClient()}
	snap, err := c.snapshot(context.Background(), monitor.SortID)
	if err != nil {
		b.Fatal(err)
	}
	keys := []struct {
		name string
		msg  []tea.Msg
	}{
		{"down", []tea.Msg{tea.KeyMsg{Type: tea.KeyDown}}},
		{"page-down", []tea.Msg{tea.KeyMsg{Type: tea.KeyPgDown}}},
		{"sort", []tea.Msg{tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("s")}}},
		{"tree", []tea.Msg{tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("t")}}},
		{"filter-letter", []tea.Msg{tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("/")}, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("7")}, tea.KeyMsg{Type: tea.KeyEsc}}},
		{"snapshot", []tea.Msg{snapMsg{snap: snap, took: time.Millisecond}}},
	}
	// One poll as loom top makes it once a second: the monitor's answer,
	// its decoding, the new list and the screen; ms/poll over 1,000 ms is
	// the share of a core that watching costs, both sides together.
	b.Run(fmt.Sprintf("tasks=%d/poll", n), func(b *testing.B) {
		m := newTopModel(c, time.Hour)
		for b.Loop() {
			m.Update(m.fetch()())
			_ = m.View()
		}
		if m.err != nil {
			b.Fatal(m.err)
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/poll")
	})
	for _, k := range keys {
		b.Run(fmt.Sprintf("tasks=%d/key=%s", n, k.name), func(b *testing.B) {
			m := newTopModel(c, time.Hour)
			m.Update(snapMsg{snap: snap, took: time.Millisecond})
			for b.Loop() {
				for _, msg := range k.msg {
					m.Update(msg)
					_ = m.View()
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*len(k.msg)), "ms/key")
		})
	}
}
