//go:build unix

package pool

import (
	"os/exec"
	"syscall"
)

// ownGroup starts the child in a process group of its own, so that killing
// the group kills whatever the child started too.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killGroup kills the child's process group: the child and every program
// it started that did not leave the group.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		_ = cmd.Process.Kill()
	}
}

// closeOnExec keeps a descriptor of the child's out of the programs its
// functions start.
func closeOnExec(fd uintptr) { syscall.CloseOnExec(int(fd)) }
