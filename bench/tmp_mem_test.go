package bench

import (
	"os"
	"runtime"
	"testing"
	"time"
)

func TestTmpMem(t *testing.T) {
	for _, impl := range poolImpls {
		if impl.name != os.Getenv("IMPL") {
			continue
		}
		runtime.GC()
		stop := make(chan struct{})
		done := make(chan [3]uint64)
		go func() {
			var mx [3]uint64
			tk := time.NewTicker(20 * time.Millisecond)
			defer tk.Stop()
			for {
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				mx[0] = max(mx[0], m.HeapInuse)
				mx[1] = max(mx[1], m.StackInuse)
				mx[2] = max(mx[2], m.Sys)
				select {
				case <-stop:
					done <- mx
					return
				case <-tk.C:
				}
			}
		}()
		impl.run(10000, 300000, func() { time.Sleep(10 * time.Millisecond) })
		close(stop)
		mx := <-done
		t.Logf("%s: heap %d MB, stack %d MB, sys %d MB", impl.name, mx[0]>>20, mx[1]>>20, mx[2]>>20)
	}
}
