//go:build unix && !linux

package e2e

import "syscall"

// sysProcAttr puts a child in its own process group, so cleanup can kill
// it whole.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
