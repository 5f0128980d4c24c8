package main

import "syscall"

// sysProcAttr kills a child when loadbench dies, so no server outlives a
// run that was interrupted.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
