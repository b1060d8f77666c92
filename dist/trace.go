package dist

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
)

// HeaderTraceparent is the header that carries a message's W3C trace
// context (https://www.w3.org/TR/trace-context/), so that a tracing
// system can follow work from the process that put it to the one that
// handles it.
const HeaderTraceparent = "traceparent"

// Headers that the remote pool sets on each job, so that a worker (and
// any NATS tool reading the stream) sees where it came from.
const (
	// HeaderTask is the name of the task that submitted the job.
	HeaderTask = "Loom-Task"
	// HeaderOrigin is where the job was submitted: host/pid, and the
	// submitting task's ID in that process ("build-7/4242 task 42").
	HeaderOrigin = "Loom-Origin"
)

// msgKey is the context key under which Serve gives a handler its
// message's Delivery, and WithTraceparent a trace context (a traced, which
// keeps the Delivery it found).
type msgKey struct{}

// traced is a trace context set with WithTraceparent.
type traced struct {
	tp string
	d  Delivery // the message being handled, if any
}

// WithTraceparent returns a context that carries the W3C traceparent tp
// (version-traceid-parentid-flags, lower-case hex: "00-" 32 "-" 16 "-" 2
// digits). Put and Submit under it send the same trace with a new parent
// ID, so that the remote handler's work joins the trace; a tracing library
// bridges to it by injecting its span's context into a "traceparent" value.
// A malformed tp is refused.
func WithTraceparent(ctx context.Context, tp string) (context.Context, error) {
	if ctx == nil {
		return nil, fmt.Errorf("dist.WithTraceparent: %w", invalid("nil context"))
	}
	if _, err := parseTraceparent(tp); err != nil {
		return nil, fmt.Errorf("dist.WithTraceparent: %w", err)
	}
	d, _ := ctx.Value(msgKey{}).(Delivery)
	if t, ok := ctx.Value(msgKey{}).(traced); ok {
		d = t.d
	}
	return context.WithValue(ctx, msgKey{}, traced{tp: tp, d: d}), nil
}

// Traceparent returns the W3C traceparent that ctx carries: the one set by
// WithTraceparent, or, in a handler run by Serve or a function run by
// ServePool, the one that came with the message; "" if none.
func Traceparent(ctx context.Context) string {
	tp, _, _ := currentTrace(ctx)
	return tp
}

// currentTrace returns the traceparent ctx carries, parsed, and whether it
// carries a valid one.
func currentTrace(ctx context.Context) (string, traceContext, bool) {
	var tp string
	switch v := ctx.Value(msgKey{}).(type) {
	case traced:
		tp = v.tp
	case Delivery:
		tp = v.Header(HeaderTraceparent)
	}
	if tp == "" {
		return "", traceContext{}, false
	}
	tc, err := parseTraceparent(tp)
	if err != nil {
		return "", traceContext{}, false
	}
	return tp, tc, true
}

// traceContext is a parsed traceparent.
type traceContext struct {
	trace  [16]byte
	parent [8]byte
	flags  byte
}

// parseTraceparent parses a traceparent header as the W3C recommendation
// says: version 00 is exactly 55 characters; a later version (not ff) may
// be longer if a '-' follows the flags; the IDs must not be all zeros.
func parseTraceparent(tp string) (traceContext, error) {
	var tc traceContext
	bad := func(why string) (traceContext, error) {
		return traceContext{}, invalid("traceparent %.80q: %s", tp, why)
	}
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' {
		return bad("want 00-<32 hex>-<16 hex>-<2 hex>")
	}
	var version [1]byte
	if !lowerHex(tp[:2]) || !lowerHex(tp[3:35]) || !lowerHex(tp[36:52]) || !lowerHex(tp[53:55]) {
		return bad("want lower-case hex digits")
	}
	_, _ = hex.Decode(version[:], []byte(tp[:2]))
	switch {
	case version[0] == 0xff:
		return bad("version ff is invalid")
	case version[0] == 0 && len(tp) != 55:
		return bad("version 00 is 55 characters")
	case len(tp) > 55 && tp[55] != '-':
		return bad("want '-' after the flags")
	}
	_, _ = hex.Decode(tc.trace[:], []byte(tp[3:35]))
	_, _ = hex.Decode(tc.parent[:], []byte(tp[36:52]))
	var flags [1]byte
	_, _ = hex.Decode(flags[:], []byte(tp[53:55]))
	tc.flags = flags[0]
	if tc.trace == [16]byte{} || tc.parent == [8]byte{} {
		return bad("an all-zero ID is invalid")
	}
	return tc, nil
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// String formats tc as a version 00 traceparent.
func (tc traceContext) String() string {
	var b [55]byte
	copy(b[:3], "00-")
	hex.Encode(b[3:35], tc.trace[:])
	b[35] = '-'
	hex.Encode(b[36:52], tc.parent[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{tc.flags})
	return string(b[:])
}

// childTraceparent returns the traceparent to send under ctx: its trace
// with a new parent ID (the message's own), or, if fresh and ctx carries
// none, a new trace; "" if ctx carries none and fresh is false. The
// sampled flag is kept only where it came from.
func childTraceparent(ctx context.Context, fresh bool) string {
	_, tc, ok := currentTrace(ctx)
	if !ok {
		if !fresh {
			return ""
		}
		binary.LittleEndian.PutUint64(tc.trace[:8], rand.Uint64())
		binary.LittleEndian.PutUint64(tc.trace[8:], rand.Uint64()|1) // never all zeros
		tc.flags = 0
	}
	binary.LittleEndian.PutUint64(tc.parent[:], rand.Uint64()|1) // never all zeros
	return tc.String()
}
