package fetch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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
