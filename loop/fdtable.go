package loop

// fdTable maps a loop's file descriptors to their handles. Descriptors are
// small integers that the kernel reuses lowest first, so a slice indexed
// by descriptor does what a map would at every event, without hashing:
// one bounds check and one load.
type fdTable struct {
	h []*handle
}

// get returns fd's handle, or nil.
func (t *fdTable) get(fd int) *handle {
	if uint(fd) < uint(len(t.h)) {
		return t.h[fd]
	}
	return nil
}

// set makes h fd's handle; fd must not be negative.
func (t *fdTable) set(fd int, h *handle) {
	if fd >= len(t.h) {
		t.h = append(t.h, make([]*handle, fd+1-len(t.h)+len(t.h)/2)...)
	}
	t.h[fd] = h
}

// del forgets fd's handle.
func (t *fdTable) del(fd int) {
	if uint(fd) < uint(len(t.h)) {
		t.h[fd] = nil
	}
}

// each calls f for every descriptor with a handle, in order; f may del.
func (t *fdTable) each(f func(fd int, h *handle)) {
	for fd, h := range t.h {
		if h != nil {
			f(fd, h)
		}
	}
}
