package pool

// jobHeap orders queued jobs by priority, highest first, then by
// submission. It is written by hand because container/heap goes through an
// interface for every comparison and swap; the queue is on every task's
// path.
type jobHeap struct{ a []*job }

func (h *jobHeap) len() int { return len(h.a) }

func (h *jobHeap) before(i, j int) bool {
	a, b := h.a[i], h.a[j]
	if a.prio != b.prio {
		return a.prio > b.prio
	}
	return a.seq < b.seq
}

func (h *jobHeap) swap(i, j int) {
	h.a[i], h.a[j] = h.a[j], h.a[i]
	h.a[i].index = int32(i)
	h.a[j].index = int32(j)
}

func (h *jobHeap) push(j *job) {
	j.index = int32(len(h.a))
	h.a = append(h.a, j)
	h.up(len(h.a) - 1)
}

// pop removes and returns the first job; the heap must not be empty.
func (h *jobHeap) pop() *job {
	j := h.a[0]
	h.removeAt(0)
	return j
}

// remove takes j, which must be in the heap, out of it.
func (h *jobHeap) remove(j *job) { h.removeAt(int(j.index)) }

func (h *jobHeap) removeAt(i int) {
	j := h.a[i]
	last := len(h.a) - 1
	if i != last {
		h.swap(i, last)
	}
	h.a[last] = nil
	h.a = h.a[:last]
	if i != last {
		h.down(i)
		h.up(i)
	}
	j.index = -1
}

func (h *jobHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.before(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h *jobHeap) down(i int) {
	n := len(h.a)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.before(r, l) {
			m = r
		}
		if !h.before(m, i) {
			return
		}
		h.swap(i, m)
		i = m
	}
}
