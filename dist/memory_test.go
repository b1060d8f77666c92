package dist_test

import (
	"testing"

	"go.uber.org/goleak"

	"loom/dist"
	"loom/dist/disttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The conformance suite on the in-process backend.
func TestMemoryBackend(t *testing.T) {
	b := dist.Memory()
	disttest.Run(t, func(*testing.T) dist.Backend { return b })
}
