package dist

import (
	"strings"
	"testing"
)

// FuzzTraceparent checks the traceparent parser: what it accepts formats
// back to a traceparent it accepts, a version 00 one to itself, and it
// never accepts upper case, all-zero IDs or version ff.
func FuzzTraceparent(f *testing.F) {
	for _, s := range []string{
		"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00-extra",
		"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"00-00000000000000000000000000000000-b7ad6b7169203331-01",
		"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
		"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-011",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tc, err := parseTraceparent(s)
		if err != nil {
			return
		}
		if strings.ToLower(s[:55]) != s[:55] || strings.HasPrefix(s, "ff") {
			t.Fatalf("accepted %q", s)
		}
		out := tc.String()
		if s[:2] == "00" && out != s {
			t.Fatalf("%q formats as %q", s, out)
		}
		if back, err := parseTraceparent(out); err != nil || back != tc {
			t.Fatalf("%q formats as %q, which parses as %v, %v", s, out, back, err)
		}
	})
}
