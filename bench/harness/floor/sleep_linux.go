package main

import (
	"syscall"
	"time"
)

// blockThread blocks the calling thread for d, as a slow fdatasync does:
// the Go scheduler sees a thread in a system call, not a sleeping
// goroutine.
func blockThread(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	syscall.Nanosleep(&ts, nil)
}
