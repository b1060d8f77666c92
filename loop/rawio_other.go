//go:build unix && !linux

package loop

import "golang.org/x/sys/unix"

// sysRead and sysWrite are read(2) and write(2) on a loop's non-blocking
// sockets; on Linux they skip the scheduler's bookkeeping (rawio_linux.go).
func sysRead(fd int, buf []byte) (int, error)  { return unix.Read(fd, buf) }
func sysWrite(fd int, buf []byte) (int, error) { return unix.Write(fd, buf) }
