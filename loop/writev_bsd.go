//go:build darwin || openbsd

package loop

import "golang.org/x/sys/unix"

func writev(fd int, iov [][]byte) (int, error) { return unix.Writev(fd, iov) }
