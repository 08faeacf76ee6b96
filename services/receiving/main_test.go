package receiving

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine (a watcher, a server, a registry
// connection) outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
