package loom

// store holds a queue's items in one of three orders. It is written by hand
// because container/heap and container/ring work on interface values, which
// would box, and so allocate, every item of a generic queue.
type store[T any] struct {
	order queueOrder
	buf   []T
	head  int // FIFO: index of the oldest item in the ring
	n     int
	less  func(a, b T) bool // priority order only
}

type queueOrder uint8

const (
	fifo queueOrder = iota
	lifo
	priority
)

func (o queueOrder) String() string {
	switch o {
	case lifo:
		return "lifo"
	case priority:
		return "priority"
	}
	return "fifo"
}

func (s *store[T]) len() int { return s.n }

func (s *store[T]) push(v T) {
	switch s.order {
	case fifo:
		if s.n == len(s.buf) {
			s.grow()
		}
		s.buf[(s.head+s.n)%len(s.buf)] = v
		s.n++
	case lifo:
		s.buf = append(s.buf, v)
		s.n++
	case priority:
		s.buf = append(s.buf, v)
		s.n++
		s.up(s.n - 1)
	}
}

// pop removes and returns the next item; the store must not be empty.
func (s *store[T]) pop() T {
	var zero T
	switch s.order {
	case fifo:
		v := s.buf[s.head]
		s.buf[s.head] = zero // let the item be collected
		s.head = (s.head + 1) % len(s.buf)
		s.n--
		return v
	case lifo:
		s.n--
		v := s.buf[s.n]
		s.buf[s.n] = zero
		s.buf = s.buf[:s.n]
		return v
	default:
		v := s.buf[0]
		s.n--
		s.buf[0] = s.buf[s.n]
		s.buf[s.n] = zero
		s.buf = s.buf[:s.n]
		if s.n > 0 {
			s.down(0)
		}
		return v
	}
}

// drain removes every item and returns them in the order pop would.
func (s *store[T]) drain() []T {
	if s.n == 0 {
		return nil
	}
	out := make([]T, 0, s.n)
	for s.n > 0 {
		out = append(out, s.pop())
	}
	return out
}

func (s *store[T]) grow() {
	size := max(2*len(s.buf), 8)
	buf := make([]T, size)
	for i := range s.n {
		buf[i] = s.buf[(s.head+i)%len(s.buf)]
	}
	s.buf, s.head = buf, 0
}

func (s *store[T]) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(s.buf[i], s.buf[p]) {
			return
		}
		s.buf[i], s.buf[p] = s.buf[p], s.buf[i]
		i = p
	}
}

func (s *store[T]) down(i int) {
	for {
		l := 2*i + 1
		if l >= s.n {
			return
		}
		m := l
		if r := l + 1; r < s.n && s.less(s.buf[r], s.buf[l]) {
			m = r
		}
		if !s.less(s.buf[m], s.buf[i]) {
			return
		}
		s.buf[i], s.buf[m] = s.buf[m], s.buf[i]
		i = m
	}
}
