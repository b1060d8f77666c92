package fetch

import (
	"bytes"
	"context"
	"encoding/json"
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
		urls, err := readURLs(strings.NewReader(s))
		if err != nil {
			t.Fatal(err) // lines are far below the 1 MiB limit
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
