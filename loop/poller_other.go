//go:build !linux && !darwin && !dragonfly && !freebsd && !netbsd && !openbsd

package loop

// On platforms without a poller here, New fails with ErrUnsupported.
type poller struct{}

func newPoller(bool) (*poller, error) { return nil, ErrUnsupported }

func (p *poller) add(int, bool, bool) error    { return ErrUnsupported }
func (p *poller) modify(int, bool, bool) error { return ErrUnsupported }
func (p *poller) remove(int) error             { return ErrUnsupported }
func (p *poller) wait(int, func(), func(int, bool, bool, bool)) error {
	return ErrUnsupported
}
func (p *poller) wake()  {}
func (p *poller) close() {}
