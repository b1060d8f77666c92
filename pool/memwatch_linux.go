package pool

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

const memoryWatchSupported = true

// residentBytes returns the resident set size of process pid, from
// /proc/<pid>/statm (its second field, in pages).
func residentBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0, err
	}
	fields := bytes.Fields(b)
	if len(fields) < 2 {
		return 0, fmt.Errorf("pool: unexpected /proc/%d/statm: %q", pid, b)
	}
	pages, err := strconv.ParseInt(string(fields[1]), 10, 64)
	if err != nil {
		return 0, err
	}
	return pages * int64(os.Getpagesize()), nil
}
