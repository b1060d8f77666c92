package loop

// reusePortBalances says whether SO_REUSEPORT spreads a port's connections
// over the sockets that share it: on Linux it does.
const reusePortBalances = true
