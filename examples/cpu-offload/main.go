// Command cpu-offload hashes 64 blocks on a CPU pool while the caller stays
// free, then prints the pool's figures: asyncio's run_in_executor.
package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"

	"loom"
	"loom/pool"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(w io.Writer) error {
	ctx := context.Background()
	cpu := pool.New("cpu") // GOMAXPROCS workers
	defer cpu.Close(ctx)
	var tasks []*loom.Task[[32]byte]
	for i := range 64 {
		t, err := pool.Submit(ctx, cpu, fmt.Sprint("hash-", i), func(context.Context) ([32]byte, error) {
			sum := sha256.Sum256([]byte{byte(i)})
			for range 20_000 { // CPU-heavy
				sum = sha256.Sum256(sum[:])
			}
			return sum, nil
		})
		if err != nil {
			return err
		}
		tasks = append(tasks, t)
	}
	fmt.Fprintln(w, "submitted 64 jobs; the caller is free meanwhile")
	var last [32]byte
	for _, t := range tasks {
		v, err := t.Wait(ctx)
		if err != nil {
			return err
		}
		last = v
	}
	if err := cpu.Close(ctx); err != nil {
		return err
	}
	m := cpu.Metrics()
	fmt.Fprintf(w, "done: %d completed, %d failed; last hash %x\n", m.Completed, m.Failed, last[:4])
	return nil
}
