//go:build !linux

package pool

import "os"

// unread cannot tell how much of a pipe is unread outside Linux: 0, so a
// child killed just after a request reached its pipe fails that request
// with ErrWorkerDied there.
func unread(*os.File) int { return 0 }
