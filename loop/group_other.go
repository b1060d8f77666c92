//go:build !linux

package loop

// reusePortBalances says whether SO_REUSEPORT spreads a port's connections
// over the sockets that share it: on macOS and most BSDs the last socket
// bound takes them all, so a Group uses one acceptor instead.
const reusePortBalances = false
