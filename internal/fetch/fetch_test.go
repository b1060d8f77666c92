package fetch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "<title>%s</title>", strings.Trim(r.URL.Path, "/"))
	}))
	defer srv.Close()
	var out bytes.Buffer
	urls := srv.URL + "/alpha\n" + srv.URL + "/beta\n"
	_, err := Run(context.Background(), strings.NewReader(urls), &out, io.Discard,
		Config{Concurrency: 2, PerHost: 2, Timeout: time.Second, Retries: 1, MaxBody: 1 << 20})
	titles := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var r Record
		_ = json.Unmarshal([]byte(line), &r)
		titles[strings.TrimPrefix(r.URL, srv.URL)] = fmt.Sprintf("%d %q", r.Status, r.Title)
	}
	fmt.Println(titles["/alpha"], titles["/beta"], err)
	// Output: 200 "alpha" 200 "beta" <nil>
}

// records runs Run over urls against the test server and returns its
// records by URL and its error.
func records(t *testing.T, urls string, c Config) (map[string]Record, error) {
	t.Helper()
	var out bytes.Buffer
	_, err := Run(context.Background(), strings.NewReader(urls), &out, io.Discard, c)
	recs := map[string]Record{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var r Record
		if line != "" {
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatal(err)
			}
			recs[r.URL] = r
		}
	}
	return recs, err
}

// A Retry-After beyond MaxRetryWait (an hour, or a date in 2100) gets an
// error line at once instead of a wait with nothing recorded (issue 13
// item 14).
func TestRetryAfterIsCapped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hour":
			w.Header().Set("Retry-After", "3600")
		case "/2100":
			w.Header().Set("Retry-After", "Fri, 01 Jan 2100 00:00:00 GMT")
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	done := make(chan struct{})
	var recs map[string]Record
	var err error
	go func() {
		defer close(done)
		recs, err = records(t, srv.URL+"/hour\n"+srv.URL+"/2100\n", Config{Concurrency: 2, PerHost: 2, Timeout: time.Second, Retries: 3, MaxBody: 1 << 20})
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the run is waiting for a Retry-After of an hour or more")
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/hour", "/2100"} {
		r := recs[srv.URL+path]
		if r.Attempts != 1 || !strings.Contains(r.Error, "Retry-After asks for") || !strings.Contains(r.Error, "--max-retry-wait 1m0s") {
			t.Errorf("%s: %+v", path, r)
		}
	}
}

// Deadline ends the run: what was done is recorded, the rest is not (so a
// resumed run does it), and the error says how many were left.
func TestDeadlineEndsTheRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			<-r.Context().Done()
			return
		}
		fmt.Fprint(w, "<title>fast</title>")
	}))
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "out.jsonl")
	urls := srv.URL + "/fast\n" + srv.URL + "/hang\n"
	c := Config{Concurrency: 2, PerHost: 2, Timeout: time.Hour, MaxBody: 1 << 20, Out: out, Deadline: 300 * time.Millisecond}
	_, err := Run(context.Background(), strings.NewReader(urls), io.Discard, io.Discard, c)
	if !errors.Is(err, ErrDeadline) || !strings.Contains(err.Error(), "1 of 2 URLs not done") {
		t.Fatalf("Run with a deadline: %v", err)
	}
	data, _ := os.ReadFile(out)
	if !strings.Contains(string(data), "/fast") || strings.Contains(string(data), "/hang") {
		t.Fatalf("results after the deadline:\n%s", data)
	}
}

// A URL line over MaxURLBytes gets an error line and the run goes on
// (issue 13 item 15: one line over 1 MiB aborted the run).
func TestOverlongURLLineIsAnErrorLine(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<title>ok</title>")
	}))
	defer srv.Close()
	long := srv.URL + "/" + strings.Repeat("x", 2<<20)
	recs, err := records(t, srv.URL+"/a\n"+long+"\n"+srv.URL+"/b\n", Config{Concurrency: 2, PerHost: 2, Timeout: time.Second, MaxBody: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if recs[srv.URL+"/a"].Title != "ok" || recs[srv.URL+"/b"].Title != "ok" {
		t.Fatalf("the URLs around the long line: %+v", recs)
	}
	cut := long[:100] + "..."
	if r := recs[cut]; !strings.Contains(r.Error, fmt.Sprintf("a URL line of %d bytes, over the %d-byte limit", len(long), MaxURLBytes)) {
		t.Fatalf("the long line's record: %+v (records %d)", r, len(recs))
	}
}

func TestBar(t *testing.T) {
	if bar(5, 10, 10) != "[=====     ]" || bar(0, 0, 4) != "[====]" {
		t.Fatal(bar(5, 10, 10))
	}
}

// FuzzReadURLs checks that the URL list keeps each distinct, non-comment
// line once, trimmed, in order of first appearance.
func FuzzReadURLs(f *testing.F) {
	for _, s := range []string{"http://a/\nhttp://b/\n", "  http://a/ \n\n# comment\nhttp://a/\r\n", "#only\n", "", "x\ny\nx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		urls, tooLong, err := readURLs(strings.NewReader(s))
		if err != nil || (len(s) <= MaxURLBytes && tooLong != nil) {
			t.Fatal(err, tooLong) // lines are far below the limit
		}
		// The model splits on newlines itself rather than scanning.
		var want []string
		seen := map[string]bool{}
		for _, line := range strings.Split(s, "\n") {
			u := strings.TrimSpace(line)
			if u != "" && u[0] != '#' && !seen[u] {
				seen[u] = true
				want = append(want, u)
			}
		}
		if !slices.Equal(urls, want) {
			t.Fatalf("%q: got %q, want %q", s, urls, want)
		}
	})
}

// FuzzResume checks the reading of a results file that a killed run may
// have left: the URLs of the whole lines that are records come back, a
// last line without its newline is cut off the file, and nothing else in
// the file changes.
func FuzzResume(f *testing.F) {
	for _, s := range []string{
		"{\"url\":\"http://a/\",\"attempts\":1,\"ms\":3}\n{\"url\":\"http://b/\",\"attem",
		"{\"url\":\"http://a/\"}\nnot json\n{\"url\":\"\"}\n",
		"", "\n\n", "{\"url\":\"http://c/\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "out.jsonl")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		done, err := resume(path)
		if err != nil {
			t.Fatal(err)
		}
		kept := data[:bytes.LastIndexByte(data, '\n')+1]
		after, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(after, kept) {
			t.Fatalf("file after resume = %q, want %q (%v)", after, kept, err)
		}
		want := map[string]bool{}
		for _, line := range bytes.Split(kept, []byte("\n")) {
			var r Record
			if json.Unmarshal(line, &r) == nil && r.URL != "" {
				want[r.URL] = true
			}
		}
		if !maps.Equal(done, want) {
			t.Fatalf("%q: resumed %v, want %v", data, done, want)
		}
	})
}
