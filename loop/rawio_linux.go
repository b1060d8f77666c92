//go:build linux

package loop

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// sysRead and sysWrite are read(2) and write(2) on a loop's non-blocking
// sockets, made without telling the scheduler (RawSyscall): a call on a
// non-blocking socket cannot block, and the scheduler's bookkeeping around
// a system call (entersyscall, exitsyscall) was a tenth of loom serve's
// CPU time per request.
func sysRead(fd int, buf []byte) (int, error)  { return rawIO(unix.SYS_READ, fd, buf) }
func sysWrite(fd int, buf []byte) (int, error) { return rawIO(unix.SYS_WRITE, fd, buf) }

func rawIO(trap uintptr, fd int, buf []byte) (int, error) {
	var p unsafe.Pointer
	if len(buf) > 0 {
		p = unsafe.Pointer(&buf[0])
	}
	n, _, errno := unix.RawSyscall(trap, uintptr(fd), uintptr(p), uintptr(len(buf)))
	if errno != 0 {
		return -1, errno
	}
	return int(n), nil
}
