package redistest

import (
	"os/exec"
	"syscall"
)

// setDeathSignal kills redis-server when the process that started it dies,
// so a crashed test leaves no server behind.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
