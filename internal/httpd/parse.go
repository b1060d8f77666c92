// Package httpd is a small HTTP/1.1 server for loom's event loop: keep-alive,
// pipelining, in-order responses, latency and failure injection per path.
// It backs `loom serve` and the serving benchmarks. It is written by hand
// because net/http cannot run on an event loop's connections: it needs a
// goroutine and a net.Conn per connection, which is what the loop avoids.
// The parser is strict and small (no chunked request bodies, no trailers)
// and fuzzed: it follows RFC 9112 where net/http does, refusing a bare CR
// or LF, a NUL or control byte in a field value or the target, a signed or
// repeated-and-different Content-Length, obsolete line folding, and an
// HTTP/1.1 request without exactly one Host.
package httpd

import (
	"bytes"
	"errors"
	"strings"
)

// Request is a parsed request. Its byte slices point into the connection's
// buffer and are valid only until the handler returns.
type Request struct {
	Method    []byte
	Target    []byte
	Minor     int // HTTP/1.Minor
	Host      []byte
	Body      []byte
	KeepAlive bool
}

// Limits of the parser. A head over maxHeaderBytes or with more than
// maxHeaders fields is refused with 431, a body over maxBodyBytes with 413;
// a Content-Length longer than maxLengthDigits is refused with 400.
const (
	maxHeaderBytes  = 16 << 10
	maxBodyBytes    = 1 << 20
	maxHeaders      = 100
	maxLengthDigits = 15
)

var (
	errIncomplete = errors.New("httpd: incomplete request")

	// parseError values carry the status to answer with.
	errBadRequest     = &parseError{400, "bad request"}
	errHeaderTooLarge = &parseError{431, "request header fields too large"}
	errBodyTooLarge   = &parseError{413, "request body too large"}
	errChunked        = &parseError{501, "chunked request bodies are not supported"}
	errVersion        = &parseError{505, "HTTP version not supported"}
)

type parseError struct {
	status int
	msg    string
}

func (e *parseError) Error() string { return "httpd: " + e.msg }

// parse reads one request from the start of buf. It returns the request and
// how many bytes it used; errIncomplete if buf holds only part of one; or a
// *parseError for a request that must be refused (the connection is then
// closed after the error response).
func parse(buf []byte) (Request, int, error) {
	var r Request
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		if len(buf) > maxHeaderBytes {
			return r, 0, errHeaderTooLarge
		}
		return r, 0, errIncomplete
	}
	if end > maxHeaderBytes {
		return r, 0, errHeaderTooLarge
	}
	head := buf[:end]
	if !cleanHead(head) {
		// A bare CR or LF, or a NUL, anywhere in the head: a proxy in
		// front may split lines where this parser would not (request
		// smuggling), so refuse, as RFC 9112 section 2.2 allows.
		return r, 0, errBadRequest
	}
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	if err := parseRequestLine(line, &r); err != nil {
		return r, 0, err
	}
	contentLength, err := parseHeaders(rest, &r)
	if err != nil {
		return r, 0, err
	}
	used := end + 4
	if contentLength > 0 {
		if contentLength > maxBodyBytes {
			return r, 0, errBodyTooLarge
		}
		if len(buf)-used < contentLength {
			return r, 0, errIncomplete
		}
		r.Body = buf[used : used+contentLength]
		used += contentLength
	}
	return r, used, nil
}

// parseRequestLine parses "METHOD target HTTP/1.x" into r.
func parseRequestLine(line []byte, r *Request) error {
	method, line, ok1 := bytes.Cut(line, []byte(" "))
	target, version, ok2 := bytes.Cut(line, []byte(" "))
	if !ok1 || !ok2 || !token(method) || !validTarget(target) {
		return errBadRequest
	}
	switch {
	case bytes.Equal(version, []byte("HTTP/1.1")):
		r.Minor, r.KeepAlive = 1, true
	case bytes.Equal(version, []byte("HTTP/1.0")):
		r.Minor = 0
	case bytes.HasPrefix(version, []byte("HTTP/")):
		return errVersion
	default:
		return errBadRequest
	}
	r.Method, r.Target = method, target
	return nil
}

// parseHeaders parses the header lines of a request (its head after the
// request line) into r, and returns its Content-Length, -1 if none.
func parseHeaders(rest []byte, r *Request) (contentLength int, err error) {
	contentLength = -1
	hosts := 0
	n := 0
	for len(rest) > 0 {
		var h []byte
		h, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		if n++; n > maxHeaders {
			return 0, errHeaderTooLarge
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok || !token(name) {
			// Also a line that begins with white space: obsolete line
			// folding, which RFC 9112 section 5.2 lets a server refuse.
			return 0, errBadRequest
		}
		value = trimOWS(value)
		if !validValue(value) {
			return 0, errBadRequest
		}
		switch {
		case asciiEqualFold(name, "content-length"):
			v, ok := parseLength(value)
			if !ok || (contentLength >= 0 && v != contentLength) {
				return 0, errBadRequest
			}
			contentLength = v
		case asciiEqualFold(name, "transfer-encoding"):
			return 0, errChunked
		case asciiEqualFold(name, "connection"):
			if asciiEqualFold(value, "close") {
				r.KeepAlive = false
			} else if asciiEqualFold(value, "keep-alive") {
				r.KeepAlive = true
			}
		case asciiEqualFold(name, "host"):
			if hosts++; hosts > 1 {
				return 0, errBadRequest // RFC 9112 section 3.2: exactly one
			}
			r.Host = value
		}
	}
	if r.Minor == 1 && hosts == 0 {
		return 0, errBadRequest // RFC 9112 section 3.2: HTTP/1.1 needs a Host
	}
	return contentLength, nil
}

// trimOWS cuts the optional white space (spaces and tabs) around a field
// value. bytes.Trim would build its set of bytes at every call.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// cleanHead reports whether every CR in head is followed by LF and every LF
// preceded by CR, and head holds no NUL.
func cleanHead(head []byte) bool {
	for i, c := range head {
		switch c {
		case 0:
			return false
		case '\r':
			if i+1 == len(head) || head[i+1] != '\n' {
				return false
			}
		case '\n':
			if i == 0 || head[i-1] != '\r' {
				return false
			}
		}
	}
	return true
}

// validTarget reports whether b can be a request target: not empty, and no
// white space or control bytes (net/http refuses those too).
func validTarget(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// validValue reports whether b is a field value: visible bytes, spaces and
// tabs (RFC 9110 section 5.5), no other control byte.
func validValue(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// parseLength reads a Content-Length: one or more digits and nothing else
// (RFC 9110 section 8.6; no sign, no spaces inside), at most maxLengthDigits
// of them, so that it cannot overflow.
func parseLength(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > maxLengthDigits {
		return 0, false
	}
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// token reports whether b is a non-empty HTTP token (RFC 9110 section
// 5.6.2: visible ASCII but the separators).
func token(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tchar[c] {
			return false
		}
	}
	return true
}

// tchar says which bytes a token may hold: a table, since a search of the
// separators for every byte was the parser's largest cost.
var tchar = func() (t [256]bool) {
	for c := '!'; c < 0x7f; c++ {
		t[c] = !strings.ContainsRune(`()<>@,;:\"/[]?={}`, c)
	}
	return t
}()

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
