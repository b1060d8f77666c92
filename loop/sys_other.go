//go:build !linux && !darwin && !dragonfly && !freebsd && !netbsd && !openbsd

package loop

import "net"

func listenTCP(string, bool) (int, *net.TCPAddr, error) { return -1, nil, ErrUnsupported }
func accept(int) (int, error)                           { return -1, ErrUnsupported }
func dialTCP(string) (int, error)                       { return -1, ErrUnsupported }
func remoteAddr(int) *net.TCPAddr                       { return nil }
func socketError(int) error                             { return ErrUnsupported }
func localAddr(int) *net.TCPAddr                        { return nil }
func readFD(int, []byte) (int, error)                   { return 0, ErrUnsupported }
func writevFD(int, [][]byte) (int, error)               { return 0, ErrUnsupported }
func shutdownWrite(int) error                           { return ErrUnsupported }
func closeFD(int) error                                 { return ErrUnsupported }
func isAgain(error) bool                                { return false }
