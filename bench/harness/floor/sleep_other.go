//go:build !linux

package main

import "time"

// blockThread sleeps for d. The floor measures Linux; elsewhere it only
// builds, and a goroutine sleep stands in for the blocked thread.
func blockThread(d time.Duration) { time.Sleep(d) }
