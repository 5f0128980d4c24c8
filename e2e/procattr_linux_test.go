package e2e

import "syscall"

// sysProcAttr puts a child in its own process group (so cleanup can kill
// it whole) and kills it when the test binary dies, even on a -timeout
// panic that skips every cleanup.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
