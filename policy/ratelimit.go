package policy

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"loom"
	"loom/internal/registry"
)

// ErrRateLimited is matched by the error of a call that a rate limiter
// refused.
var ErrRateLimited = errors.New("policy: rate limited")

// RateLimitedError is the error of a refused call: it matches
// ErrRateLimited, and RetryAfter says when a token will be there.
type RateLimitedError struct {
	Limiter string
	Key     string // for a keyed limiter
	Wait    time.Duration
}

// Error says which limiter refused, and how long to wait.
func (e *RateLimitedError) Error() string {
	if e.Key != "" {
		return fmt.Sprintf("policy: rate limit %q for %q: next call allowed in %v", e.Limiter, e.Key, e.Wait)
	}
	return fmt.Sprintf("policy: rate limit %q: next call allowed in %v", e.Limiter, e.Wait)
}

// Is reports whether target is ErrRateLimited.
func (e *RateLimitedError) Is(target error) bool { return target == ErrRateLimited }

// RetryAfter returns how long until a call would be allowed.
func (e *RateLimitedError) RetryAfter() time.Duration { return e.Wait }

// RateLimitOption configures a RateLimit or KeyedRateLimit.
type RateLimitOption func(*limitConfig) error

type limitConfig struct {
	noWait  bool
	maxKeys int
	idle    time.Duration
}

// NoWait refuses a call that finds no token, with a *RateLimitedError,
// instead of waiting for one.
func NoWait() RateLimitOption {
	return func(c *limitConfig) error { c.noWait = true; return nil }
}

// MaxKeys bounds how many keys a KeyedRateLimit remembers (default
// 10,000); the least recently used is forgotten first.
func MaxKeys(n int) RateLimitOption {
	return func(c *limitConfig) error {
		if n < 1 {
			return fmt.Errorf("%w: max keys %d; need at least 1", loom.ErrInvalidArgument, n)
		}
		c.maxKeys = n
		return nil
	}
}

// KeyIdle makes a KeyedRateLimit forget a key unused for d (default 10
// minutes); a forgotten key starts again with a full bucket.
func KeyIdle(d time.Duration) RateLimitOption {
	return func(c *limitConfig) error {
		if d <= 0 {
			return fmt.Errorf("%w: key idle %v; need more than 0", loom.ErrInvalidArgument, d)
		}
		c.idle = d
		return nil
	}
}

func buildLimit(where string, perSecond float64, burst int, opts []RateLimitOption) (limitConfig, error) {
	c := limitConfig{maxKeys: 10_000, idle: 10 * time.Minute}
	if !(perSecond > 0) || burst < 1 { // NaN too
		return c, fmt.Errorf("%s: %w: %v per second (need > 0), burst %d (need ≥ 1)", where, loom.ErrInvalidArgument, perSecond, burst)
	}
	for _, o := range opts {
		if o == nil {
			return c, fmt.Errorf("%s: %w: nil option", where, loom.ErrInvalidArgument)
		}
		if err := o(&c); err != nil {
			return c, fmt.Errorf("%s: %w", where, err)
		}
	}
	return c, nil
}

// RateLimit lets calls through at most perSecond on average, with bursts
// of up to burst, using golang.org/x/time/rate's token bucket. A call
// waits for its token (giving up, with an error, when its context ends or
// its deadline comes before the token), or with NoWait is refused at once.
type RateLimit struct {
	name     string
	lim      *rate.Limiter
	cfg      limitConfig
	err      error
	rejected atomic.Uint64
}

// NewRateLimit returns a rate limit named name for the monitor. Bad
// arguments give a limit that refuses every call with an error wrapping
// loom.ErrInvalidArgument.
func NewRateLimit(name string, perSecond float64, burst int, opts ...RateLimitOption) *RateLimit {
	c, err := buildLimit("policy.NewRateLimit", perSecond, burst, opts)
	r := &RateLimit{name: name, cfg: c, err: err}
	if err == nil {
		r.lim = rate.NewLimiter(rate.Limit(perSecond), burst)
		registry.Track(r, registry.KindRateLimit, name, (*RateLimit).report)
	}
	return r
}

func (r *RateLimit) run(ctx context.Context, c chain, i int) error {
	if r.err != nil {
		return r.err
	}
	if err := take(ctx, r.lim, r.cfg.noWait, r.name, ""); err != nil {
		r.rejected.Add(1)
		return err
	}
	return c.next(ctx, i)
}

// take gets a token from lim, waiting unless noWait.
func take(ctx context.Context, lim *rate.Limiter, noWait bool, name, key string) error {
	if lim.Allow() {
		return nil
	}
	res := lim.Reserve()
	d := res.Delay()
	if noWait || !res.OK() {
		res.Cancel()
		return &RateLimitedError{Limiter: name, Key: key, Wait: d}
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		res.Cancel()
		return &RateLimitedError{Limiter: name, Key: key, Wait: d}
	}
	if err := sleep(ctx, d); err != nil {
		res.Cancel()
		return err
	}
	return nil
}

// Tokens returns the tokens available now.
func (r *RateLimit) Tokens() float64 {
	if r.lim == nil {
		return 0
	}
	return r.lim.Tokens()
}

func (r *RateLimit) report(f *registry.Figures) {
	f.Stat("tokens", r.lim.Tokens())
	f.Stat("limit_per_second", float64(r.lim.Limit()))
	f.Stat("burst", float64(r.lim.Burst()))
	f.Counter("rejected", float64(r.rejected.Load()))
}

type keyCtx struct{}

// WithKey returns a context carrying key, for a KeyedRateLimit: the host of
// a request, a tenant, a user.
func WithKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, keyCtx{}, key)
}

// KeyedRateLimit is a RateLimit per key: each key (set with WithKey on the
// call's context) has its own token bucket, so that one busy host or tenant
// does not use up another's share. Keys are forgotten when unused for the
// idle time or when more than MaxKeys are known, least recently used
// first. Writing it by hand is needed because x/time/rate has no keyed
// limiter.
type KeyedRateLimit struct {
	name      string
	perSecond rate.Limit
	burst     int
	cfg       limitConfig
	err       error

	mu       sync.Mutex
	keys     map[string]*list.Element
	lru      list.List // of *keyEntry, most recent at the front
	rejected atomic.Uint64
	evicted  atomic.Uint64
}

type keyEntry struct {
	key  string
	lim  *rate.Limiter
	used time.Time
}

// NewKeyedRateLimit returns a keyed rate limit named name for the monitor:
// perSecond and burst for each key.
func NewKeyedRateLimit(name string, perSecond float64, burst int, opts ...RateLimitOption) *KeyedRateLimit {
	c, err := buildLimit("policy.NewKeyedRateLimit", perSecond, burst, opts)
	k := &KeyedRateLimit{name: name, perSecond: rate.Limit(perSecond), burst: burst, cfg: c, err: err, keys: map[string]*list.Element{}}
	if err == nil {
		registry.Track(k, registry.KindRateLimit, name, (*KeyedRateLimit).report)
	}
	return k
}

func (k *KeyedRateLimit) run(ctx context.Context, c chain, i int) error {
	if k.err != nil {
		return k.err
	}
	key, ok := ctx.Value(keyCtx{}).(string)
	if !ok {
		return fmt.Errorf("policy: keyed rate limit %q: %w: no key in the context; set one with policy.WithKey", k.name, loom.ErrInvalidArgument)
	}
	if err := take(ctx, k.limiter(key), k.cfg.noWait, k.name, key); err != nil {
		k.rejected.Add(1)
		return err
	}
	return c.next(ctx, i)
}

// limiter returns key's limiter, making it if needed and forgetting stale
// keys.
func (k *KeyedRateLimit) limiter(key string) *rate.Limiter {
	now := time.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	// The least recently used keys are at the back: forget the idle ones.
	for e := k.lru.Back(); e != nil && now.Sub(e.Value.(*keyEntry).used) >= k.cfg.idle; e = k.lru.Back() {
		k.lru.Remove(e)
		delete(k.keys, e.Value.(*keyEntry).key)
		k.evicted.Add(1)
	}
	if e, ok := k.keys[key]; ok {
		ent := e.Value.(*keyEntry)
		ent.used = now
		k.lru.MoveToFront(e)
		return ent.lim
	}
	ent := &keyEntry{key: key, lim: rate.NewLimiter(k.perSecond, k.burst), used: now}
	k.keys[key] = k.lru.PushFront(ent)
	if k.lru.Len() > k.cfg.maxKeys {
		old := k.lru.Back()
		k.lru.Remove(old)
		delete(k.keys, old.Value.(*keyEntry).key)
		k.evicted.Add(1)
	}
	return ent.lim
}

// Keys returns how many keys the limiter remembers.
func (k *KeyedRateLimit) Keys() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lru.Len()
}

func (k *KeyedRateLimit) report(f *registry.Figures) {
	f.Stat("keys", float64(k.Keys()))
	f.Stat("limit_per_second", float64(k.perSecond))
	f.Stat("burst", float64(k.burst))
	f.Counter("rejected", float64(k.rejected.Load()))
	f.Counter("evicted", float64(k.evicted.Load()))
}
