//go:build race

package loom

// raceEnabled says the tests run under the race detector, which makes a
// sync.Pool drop some of what it is given.
const raceEnabled = true
