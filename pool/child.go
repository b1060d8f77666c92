package pool

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"loom"
)

// The environment a ProcessPool gives its children.
const (
	envChild    = "LOOM_POOL_CHILD"    // "1" in a child
	envMemLimit = "LOOM_POOL_MEMLIMIT" // the memory limit in bytes, if any
)

// The child's ends of its pipes: ExtraFiles start at descriptor 3.
const (
	childRequestFD  = 3
	childResponseFD = 4
)

// request is one call, parent to child.
type request struct {
	Func     string
	Arg      []byte // gob of the argument
	Deadline time.Time
}

// response is one result, child to parent.
type response struct {
	Result []byte // gob of the result
	Err    string // the error's text, if fn failed
	Failed bool
	Panic  string // the panic's value and stack, if fn panicked
}

// hello is the first message of a child: proof that it runs ServeChild.
type hello struct{ Pid int }

// invoker runs a registered function on an encoded argument.
type invoker func(ctx context.Context, arg []byte) response

var funcs sync.Map // name → invoker

// Func is a function registered with Register, runnable in the child
// processes of a ProcessPool.
type Func[A, R any] struct {
	name string
	fn   func(context.Context, A) (R, error)
}

// Name returns the name the function was registered under.
func (f *Func[A, R]) Name() string { return f.name }

// EncodeArg encodes an argument as Run sends it (gob), for executors of
// other kinds that run registered functions: dist's remote pool.
func (f *Func[A, R]) EncodeArg(arg A) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&arg); err != nil {
		return nil, fmt.Errorf("encoding the argument of %q: %w", f.name, err)
	}
	return buf.Bytes(), nil
}

// DecodeResult decodes a result as Invoke encodes it.
func (f *Func[A, R]) DecodeResult(raw []byte) (R, error) {
	var v R
	if err := gob.NewDecoder(bytes.NewReader(raw)).Decode(&v); err != nil {
		var zero R
		return zero, fmt.Errorf("decoding the result of %q: %w", f.name, err)
	}
	return v, nil
}

// ErrUnknownFunc is wrapped by Invoke's error for a name no function was
// registered under in this process.
var ErrUnknownFunc = errors.New("pool: no function registered under that name")

// Invoke runs the function registered under name in this process, on an
// argument encoded by EncodeArg, and returns its result encoded for
// DecodeResult. The function's error, or its panic, comes back as a
// *RemoteError (as from a child process); an argument that does not decode
// is one too. It is how executors of other kinds (dist's remote pool) run
// registered functions; a ProcessPool's children use it as well.
func Invoke(ctx context.Context, name string, arg []byte) ([]byte, error) {
	if ctx == nil {
		return nil, fmt.Errorf("pool.Invoke: %w: nil context", loom.ErrInvalidArgument)
	}
	v, ok := funcs.Load(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q (call pool.Register at package level)", ErrUnknownFunc, name)
	}
	resp := v.(invoker)(ctx, arg)
	if resp.Failed {
		return nil, &RemoteError{Func: name, Message: resp.Err, Panic: resp.Panic}
	}
	return resp.Result, nil
}

// Register registers fn under name so that a ProcessPool can run it in a
// child process, and returns the handle to pass to Run. A child runs the
// same binary, so it must register the same functions: call Register at
// package level (var resize = pool.Register("resize", resizeImage)) or in
// an init function, never conditionally.
//
// Arguments and results travel with encoding/gob, so A and R must be types
// gob can encode: exported fields, and gob.Register for values stored in
// interfaces. Registering an empty name, a nil fn or a name twice is a
// programming error and panics, as it happens at program start.
func Register[A, R any](name string, fn func(ctx context.Context, arg A) (R, error)) *Func[A, R] {
	if name == "" || fn == nil {
		panic("pool.Register: empty name or nil function")
	}
	f := &Func[A, R]{name: name, fn: fn}
	inv := invoker(func(ctx context.Context, raw []byte) (resp response) {
		var arg A
		if err := gob.NewDecoder(bytes.NewReader(raw)).Decode(&arg); err != nil {
			return response{Failed: true, Err: fmt.Sprintf("decoding the argument of %q: %v", name, err)}
		}
		defer func() {
			if r := recover(); r != nil {
				resp = response{Failed: true, Panic: fmt.Sprintf("%v\n\n%s", r, debug.Stack())}
			}
		}()
		v, err := fn(ctx, arg)
		if err != nil {
			return response{Failed: true, Err: err.Error()}
		}
		var buf bytes.Buffer
		if err := gob.NewEncoder(&buf).Encode(&v); err != nil {
			return response{Failed: true, Err: fmt.Sprintf("encoding the result of %q: %v", name, err)}
		}
		return response{Result: buf.Bytes()}
	})
	if _, dup := funcs.LoadOrStore(name, inv); dup {
		panic(fmt.Sprintf("pool.Register: %q registered twice", name))
	}
	return f
}

// ServeChild must be called first thing in main (and in TestMain for
// tests that use a ProcessPool). In a process started by a ProcessPool it
// serves the parent's calls and then exits the process, never returning;
// in any other process it returns at once, doing nothing.
//
// This is Python's "if __name__ == '__main__'" guard for the spawn start
// method: a child runs the same binary, and must not run the program's own
// main. A child that does not call ServeChild never says hello, and the
// pool fails its task with a clear error instead of waiting.
func ServeChild() {
	if os.Getenv(envChild) != "1" {
		return
	}
	os.Exit(serveChild())
}

func serveChild() int {
	in := os.NewFile(childRequestFD, "loom-pool-requests")
	out := os.NewFile(childResponseFD, "loom-pool-responses")
	if in == nil || out == nil {
		fmt.Fprintln(os.Stderr, "pool: child started without its pipes")
		return 3
	}
	// The pipes are the parent's line to this child alone: a program that
	// a function starts must not inherit them, or the parent would not see
	// this child die until that program exits.
	closeOnExec(in.Fd())
	closeOnExec(out.Fd())
	if v, err := strconv.ParseInt(os.Getenv(envMemLimit), 10, 64); err == nil && v > 0 {
		// The parent kills the child above the limit; the collector works
		// to stay below it first.
		debug.SetMemoryLimit(v)
	}
	dec, enc := gob.NewDecoder(in), gob.NewEncoder(out)
	if err := enc.Encode(hello{Pid: os.Getpid()}); err != nil {
		return 3
	}
	for {
		var req request
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return 0 // the parent closed the pipe: retire
			}
			fmt.Fprintln(os.Stderr, "pool: child reading a request:", err)
			return 3
		}
		resp := serveOne(req)
		if err := enc.Encode(&resp); err != nil {
			fmt.Fprintln(os.Stderr, "pool: child writing a response:", err)
			return 3
		}
	}
}

func serveOne(req request) response {
	v, ok := funcs.Load(req.Func)
	if !ok {
		return response{Failed: true, Err: fmt.Sprintf("no function registered as %q in the child: call pool.Register at package level", req.Func)}
	}
	ctx := context.Background()
	if !req.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, req.Deadline)
		defer cancel()
	}
	return v.(invoker)(ctx, req.Arg)
}
