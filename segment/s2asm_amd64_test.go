//go:build amd64 && gc && !noasm

package segment_test

// The golden segment was written by the S2 amd64 assembly encoder.
func init() { s2Reproducible = true }
