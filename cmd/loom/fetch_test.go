package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	fetcher "loom/internal/fetch"
)

// fetchTarget is a local site with good, flaky, missing, huge and slow
// pages.
func fetchTarget(t *testing.T) *httptest.Server {
	t.Helper()
	var flaky atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/ok/{n}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<html><title>Page %s</title><a href="/1">1</a><a href="/2">2</a></html>`, r.PathValue("n"))
	})
	mux.HandleFunc("/slow/{n}", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(40 * time.Millisecond)
		fmt.Fprintf(w, "<title>slow %s</title>", r.PathValue("n"))
	})
	mux.HandleFunc("/flaky", func(w http.ResponseWriter, r *http.Request) {
		if flaky.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "<title>recovered</title>")
	})
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("x"), 5000))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func readRecords(t *testing.T, path string) map[string]fetcher.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs := map[string]fetcher.Record{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r fetcher.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		if _, dup := recs[r.URL]; dup {
			t.Fatalf("%s recorded twice", r.URL)
		}
		recs[r.URL] = r
	}
	return recs
}

func TestFetchRecordsEveryURLWithClearErrors(t *testing.T) {
	srv := fetchTarget(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "urls.txt")
	out := filepath.Join(dir, "out.jsonl")
	urls := []string{srv.URL + "/ok/1", srv.URL + "/ok/2", srv.URL + "/flaky", srv.URL + "/missing",
		srv.URL + "/huge", "not a url", "ftp://example.com/x", "http://127.0.0.1:1/unreachable"}
	os.WriteFile(in, []byte("# test input\n\n"+strings.Join(urls, "\n")+"\n"+urls[0]+"\n"), 0o644)
	msg, err := runLoom(t, "fetch", in, "--out", out, "--max-body", "1000", "--retries", "2", "--timeout", "2s")
	if err != nil {
		t.Fatal(err, msg)
	}
	recs := readRecords(t, out)
	if len(recs) != len(urls) {
		t.Fatalf("%d records for %d URLs", len(recs), len(urls))
	}
	check := func(u string, ok func(r fetcher.Record) bool) {
		t.Helper()
		if r := recs[u]; !ok(r) {
			t.Errorf("%s: %+v", u, r)
		}
	}
	check(srv.URL+"/ok/1", func(r fetcher.Record) bool {
		return r.Error == "" && r.Status == 200 && r.Title == "Page 1" && r.Links == 2 && len(r.SHA256) == 64 && r.Attempts == 1
	})
	check(srv.URL+"/flaky", func(r fetcher.Record) bool { return r.Error == "" && r.Title == "recovered" && r.Attempts == 2 })
	check(srv.URL+"/missing", func(r fetcher.Record) bool { return strings.Contains(r.Error, "404") && r.Attempts == 1 })
	check(srv.URL+"/huge", func(r fetcher.Record) bool { return strings.Contains(r.Error, "max-body") })
	check("not a url", func(r fetcher.Record) bool { return strings.Contains(r.Error, "bad URL") })
	check("ftp://example.com/x", func(r fetcher.Record) bool { return strings.Contains(r.Error, "bad URL") })
	check("http://127.0.0.1:1/unreachable", func(r fetcher.Record) bool {
		return strings.Contains(r.Error, "refused") && r.Attempts == 3
	})
	if !strings.Contains(msg, "2 retried") && !strings.Contains(msg, "retried") {
		t.Errorf("summary: %s", msg)
	}
}

// TestFetchChild is the body of the kill-and-resume test's child process.
func TestFetchChild(t *testing.T) {
	args := os.Getenv("LOOM_FETCH_CHILD")
	if args == "" {
		t.Skip("runs only as the child of TestFetchKilledAndResumed")
	}
	if _, err := runLoom(t, strings.Split(args, "\x1f")...); err != nil {
		t.Fatal(err)
	}
}

// A run killed midway (SIGKILL) and started again records every URL
// exactly once.
func TestFetchKilledAndResumed(t *testing.T) {
	srv := fetchTarget(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "urls.txt")
	out := filepath.Join(dir, "out.jsonl")
	var urls []string
	for i := range 120 {
		urls = append(urls, fmt.Sprintf("%s/slow/%d", srv.URL, i))
	}
	os.WriteFile(in, []byte(strings.Join(urls, "\n")), 0o644)
	args := []string{"fetch", in, "--out", out, "--concurrency", "4", "--per-host", "4"}

	child := exec.Command(os.Args[0], "-test.run=^TestFetchChild$")
	child.Env = append(os.Environ(), "LOOM_FETCH_CHILD="+strings.Join(args, "\x1f"))
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		data, _ := os.ReadFile(out)
		if bytes.Count(data, []byte("\n")) >= 30 {
			break
		}
		if time.Now().After(deadline) {
			child.Process.Kill()
			t.Fatal("the first run made no progress")
		}
		time.Sleep(10 * time.Millisecond)
	}
	child.Process.Signal(syscall.SIGKILL)
	child.Wait()
	first := readRecordsLenient(t, out)
	if first >= len(urls) {
		t.Fatalf("the first run finished (%d) before it was killed", first)
	}

	msg, err := runLoom(t, args...)
	if err != nil {
		t.Fatal(err, msg)
	}
	recs := readRecords(t, out) // fails on any duplicate
	if len(recs) != len(urls) {
		t.Fatalf("%d of %d URLs recorded after resuming", len(recs), len(urls))
	}
	for _, u := range urls {
		if r, ok := recs[u]; !ok || r.Error != "" {
			t.Fatalf("%s: %+v", u, r)
		}
	}
	if !strings.Contains(msg, "skipped") {
		t.Fatalf("summary: %s", msg)
	}
}

// readRecordsLenient counts complete lines (the killed run may have left
// half a line, which the resumed run cuts off).
func readRecordsLenient(t *testing.T, path string) int {
	data, _ := os.ReadFile(path)
	return bytes.Count(data, []byte("\n"))
}

func TestFetchBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"fetch", "--concurrency", "0"},
		{"fetch", "--per-host", "0"},
		{"fetch", "--timeout", "0s"},
		{"fetch", "--max-body", "0"},
		{"fetch", "--retries", "-1"},
		{"fetch", "--rate", "-2"},
		{"fetch", "--rate", "NaN"},
		{"fetch", "/no/such/file"},
	} {
		if _, err := runLoom(t, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
