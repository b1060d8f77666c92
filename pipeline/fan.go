package pipeline

import (
	"context"
	"fmt"
	"time"

	"loom"
)

// Flatten streams the items of each slice of in, in order.
func Flatten[T any](in *Stream[[]T], name string) *Stream[T] {
	p := in.p
	in.take()
	out := newStream[T](p, cap(in.ch))
	p.spawn(name, func(ctx context.Context) error {
		defer close(out.ch)
		for vs := range in.ch {
			for _, v := range vs {
				if !send(p, ctx, out.ch, v) {
					go drain(in.ch)
					return nil
				}
			}
		}
		return nil
	}, func() { close(out.ch); go drain(in.ch) })
	return out
}

// Batch groups the items of in into slices of up to size items, emitting a
// batch when it is full or when maxWait has passed since its first item
// (maxWait 0: only when full, and at the end).
func Batch[T any](in *Stream[T], name string, size int, maxWait time.Duration) *Stream[[]T] {
	p := in.p
	in.take()
	out := newStream[[]T](p, 1)
	if size < 1 || maxWait < 0 {
		p.fail(fmt.Errorf("pipeline stage %q: %w: batch size %d, max wait %v", name, loom.ErrInvalidArgument, size, maxWait))
		close(out.ch)
		go drain(in.ch)
		return out
	}
	p.spawn(name, func(ctx context.Context) error {
		defer close(out.ch)
		var batch []T
		var timer *time.Timer
		var expired <-chan time.Time
		emit := func() bool {
			if timer != nil {
				timer.Stop()
				expired = nil
			}
			if len(batch) == 0 {
				return true
			}
			b := batch
			batch = nil
			return send(p, ctx, out.ch, b)
		}
		for {
			select {
			case v, ok := <-in.ch:
				if !ok {
					emit()
					return nil
				}
				batch = append(batch, v)
				if len(batch) == 1 && maxWait > 0 {
					if timer == nil {
						timer = time.NewTimer(maxWait)
					} else {
						timer.Reset(maxWait)
					}
					expired = timer.C
				}
				if len(batch) >= size && !emit() {
					go drain(in.ch)
					return nil
				}
			case <-expired:
				expired = nil
				if !emit() {
					go drain(in.ch)
					return nil
				}
			case <-ctx.Done():
				p.cut.Store(true)
				go drain(in.ch)
				return nil
			}
		}
	}, func() { close(out.ch); go drain(in.ch) })
	return out
}

// Merge joins streams of one pipeline into one (fan-in), in no particular
// order.
func Merge[T any](name string, streams ...*Stream[T]) *Stream[T] {
	if len(streams) == 0 {
		panic("pipeline.Merge: no streams") // a programming error, found at build time
	}
	p := streams[0].p
	for _, s := range streams {
		s.take()
	}
	out := newStream[T](p, len(streams))
	wg, ok := closeAfter(p, name, out.ch, func() {
		for _, s := range streams {
			go drain(s.ch)
		}
	})
	if !ok {
		return out
	}
	for i, s := range streams {
		wg.Add(1)
		p.spawn(fmt.Sprintf("%s#%d", name, i), func(ctx context.Context) error {
			defer wg.Done()
			for v := range s.ch {
				if !send(p, ctx, out.ch, v) {
					go drain(s.ch)
					return nil
				}
			}
			return nil
		}, func() { wg.Done(); go drain(s.ch) })
	}
	wg.Done()
	return out
}

// Broadcast sends every item of in to each of n streams (fan-out to
// several consumers). The slowest consumer sets the pace.
func Broadcast[T any](in *Stream[T], name string, n int) []*Stream[T] {
	p := in.p
	in.take()
	if n < 1 {
		p.fail(fmt.Errorf("pipeline stage %q: %w: broadcast to %d streams", name, loom.ErrInvalidArgument, n))
		n = 1
	}
	outs := make([]*Stream[T], n)
	for i := range outs {
		outs[i] = newStream[T](p, cap(in.ch))
	}
	closeAll := func() {
		for _, o := range outs {
			close(o.ch)
		}
	}
	p.spawn(name, func(ctx context.Context) error {
		defer closeAll()
		for v := range in.ch {
			for _, o := range outs {
				if !send(p, ctx, o.ch, v) {
					go drain(in.ch)
					return nil
				}
			}
		}
		return nil
	}, func() { closeAll(); go drain(in.ch) })
	return outs
}
