package jetstream_test

import (
	"testing"

	"go.uber.org/goleak"

	"loom/dist"
	"loom/dist/disttest"
	"loom/dist/jetstream"
)

func TestMain(m *testing.M) {
	if childRole() {
		return
	}
	goleak.VerifyTestMain(m)
}

// embedded starts an embedded server for the test, on a temporary
// directory, and shuts it down at the end.
func embedded(t *testing.T, opts ...jetstream.EmbeddedOption) *jetstream.Backend {
	t.Helper()
	b, err := jetstream.Embedded(t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// The conformance suite on a real JetStream server, embedded.
func TestJetStreamBackend(t *testing.T) {
	b := embedded(t)
	disttest.Run(t, func(*testing.T) dist.Backend { return b })
}
