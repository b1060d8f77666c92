package monitor

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"testing"
	"time"

	"loom"
)

// CPU time by task name: a task that burns CPU gets most of the samples,
// under its name; bad periods are refused; one profile at a time.
func TestCPUByTaskName(t *testing.T) {
	base := serve(t)
	ctx, stop := context.WithCancel(context.Background())
	burner := loom.Go(ctx, "cpu-burner", func(ctx context.Context) (int, error) {
		sum := sha256.Sum256(nil)
		for ctx.Err() == nil {
			for range 1000 {
				sum = sha256.Sum256(sum[:])
			}
		}
		return int(sum[0]), nil
	})
	idle := loom.Go(ctx, "cpu-idle", func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, nil })
	defer func() { stop(); _, _ = burner.Wait(context.Background()); _, _ = idle.Wait(context.Background()) }()

	var p CPUProfile
	if code := get(t, base+"/api/cpu?seconds=1", &p); code != http.StatusOK {
		t.Fatalf("/api/cpu: %d", code)
	}
	if len(p.Shares) == 0 || p.Shares[0].Name != "cpu-burner" || p.Shares[0].Kind != "task" || p.Shares[0].Share < 0.3 {
		t.Fatalf("the burner is not the top consumer: %+v", p)
	}
	for _, s := range p.Shares {
		if s.Name == "cpu-idle" && s.Share > 0.05 {
			t.Fatalf("an idle task used %.0f%% of the CPU: %+v", 100*s.Share, p)
		}
	}
	for _, bad := range []string{"0", "-1", "31", "x", "NaN"} {
		var e map[string]string
		if code := get(t, base+"/api/cpu?seconds="+bad, &e); code != http.StatusBadRequest {
			t.Errorf("seconds=%s: %d", bad, code)
		}
	}
	// One at a time: a second profile while one runs is refused.
	first := make(chan error, 1)
	go func() { _, err := SampleCPU(context.Background(), 300*time.Millisecond); first <- err }()
	time.Sleep(50 * time.Millisecond)
	if _, err := SampleCPU(context.Background(), 100*time.Millisecond); !errors.Is(err, ErrProfiling) {
		t.Errorf("a second profile at once: %v", err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}
