//go:build !unix

package pool

import "os/exec"

// ownGroup does nothing where there are no process groups.
func ownGroup(*exec.Cmd) {}

// killGroup kills the child alone where there are no process groups.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}

// closeOnExec does nothing where descriptors are not inherited by number.
func closeOnExec(uintptr) {}
