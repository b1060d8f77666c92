package loom

import (
	"context"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// noCtx is a nil context, for testing that functions refuse one.
var noCtx context.Context
