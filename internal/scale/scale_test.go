package scale

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"go.uber.org/goleak"

	"loom"
	"loom/monitor"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func wait(ctx context.Context) error { <-ctx.Done(); return nil }

func TestBlockedRefusesBadArguments(t *testing.T) {
	for _, n := range []int{0, -1000, 1500} {
		if _, _, err := Blocked(n, "g", "t", wait); !errors.Is(err, loom.ErrInvalidArgument) {
			t.Errorf("Blocked(%d): %v", n, err)
		}
	}
	if _, _, err := Blocked(1000, "g", "t", nil); !errors.Is(err, loom.ErrInvalidArgument) {
		t.Errorf("Blocked with no function: %v", err)
	}
}

func TestBlockedTasksLiveUntilReleased(t *testing.T) {
	groups, release, err := Blocked(3000, "live-group", "live-task", wait)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if g.Len() != 3 {
			t.Fatalf("group %s holds %d tasks, want 3", g.Name(), g.Len())
		}
	}
	release()
	release()
	for _, g := range groups {
		if g.Len() != 0 {
			t.Fatalf("group %s holds %d tasks after release", g.Name(), g.Len())
		}
	}
}

func TestWatchServesTheTasks(t *testing.T) {
	w, err := Watch(1000, "watched-group", "watched-task", wait)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	resp, err := http.Get(w.URL + "/api/summary")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum struct {
		Counts []monitor.Count `json:"counts"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&sum); err != nil {
		t.Fatal(err)
	}
	live := 0
	for _, c := range sum.Counts {
		if c.Kind == "task" && (c.State == "running" || c.State == "pending") {
			live += c.N
		}
	}
	if live < 1000 {
		t.Fatalf("the monitor counts %d live tasks, want at least 1000: %v", live, sum.Counts)
	}
}
