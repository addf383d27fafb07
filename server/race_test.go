//go:build race

package server

// raceEnabled shrinks the largest end-to-end tests under the race
// detector, which slows JSON and HTTP tenfold; the full sizes run in the
// suite's other passes.
const raceEnabled = true
