package loom

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestTimeoutExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		_, err := Timeout(context.Background(), 2*time.Second, sleepReturn(time.Hour, 1, nil))
		if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		var te *TimeoutError
		if !errors.As(err, &te) || te.After != 2*time.Second {
			t.Fatalf("err = %#v", err)
		}
		if time.Since(start) != 2*time.Second {
			t.Fatalf("took %v", time.Since(start))
		}
	})
}

func TestTimeoutInTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v, err := Timeout(context.Background(), 2*time.Second, sleepReturn(time.Second, 5, nil))
		if v != 5 || err != nil {
			t.Fatalf("Timeout = %v, %v", v, err)
		}
	})
}

func TestTimeoutParentCancelIsNotTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := Timeout(ctx, time.Hour, sleepReturn(2*time.Hour, 1, nil))
		if errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v: the parent's deadline is not Timeout's", err)
		}
	})
}

func TestShieldCompletesAfterCallerGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		saved := make(chan string, 1)
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(time.Second); cancel() }()
		_, err := Shield(ctx, "save", func(ctx context.Context) (int, error) {
			select {
			case <-time.After(5 * time.Second):
				saved <- "saved"
				return 1, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Shield = %v", err)
		}
		if got := <-saved; got != "saved" {
			t.Fatal(got)
		}
	})
}

func TestShieldDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ends := make(chan time.Duration, 2)
		work := func(ctx context.Context) (int, error) {
			start := time.Now()
			select {
			case <-time.After(time.Minute):
			case <-ctx.Done():
			}
			ends <- time.Since(start)
			return 0, nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		Shield(ctx, "keeps", work)
		if d := <-ends; d != time.Second {
			t.Fatalf("kept deadline: ran %v, want 1s", d)
		}
		ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
		defer cancel2()
		Shield(ctx2, "drops", work, DropDeadline())
		if d := <-ends; d != time.Minute {
			t.Fatalf("dropped deadline: ran %v, want 1m", d)
		}
	})
}
