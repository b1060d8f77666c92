//go:build !linux

package pool

import "errors"

const memoryWatchSupported = false

func residentBytes(int) (int64, error) {
	return 0, errors.New("pool: memory limits need Linux")
}
