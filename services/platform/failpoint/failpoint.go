// Package failpoint names the crash points of labourlink and fires them when a test asks for it
// through the environment. It is a thin layer over go.etcd.io/gofail's runtime (the failpoint
// library etcd uses), without gofail's code generation: the points are plain calls,
//
//	failpoint.Inject(failpoint.StoreAfterCommit)
//
// and cost one load of a boolean when failpoints are off, which they are unless the process
// starts with GOFAIL_FAILPOINTS (or GOFAIL_HTTP) in its environment. Production never sets them.
//
// # Enabling
//
// GOFAIL_FAILPOINTS holds `name=terms` pairs separated by `;`, in gofail's term language:
// `off`, `panic("why")`, `sleep(100)`, `print`, `return(VALUE)`, each optionally prefixed by a
// count `N*` or a probability `P%`, chained with `->`. A `return("kill")` makes the process kill
// itself with SIGKILL on the spot (no deferred calls, no flushing: a crash, the same as an
// outside kill -9 at that line). Examples:
//
//	GOFAIL_FAILPOINTS='storeAfterCommit=5*off->return("kill")'   # crash after the 6th commit
//	GOFAIL_FAILPOINTS='relayAfterDeliver=panic("relay")'           # panic at the first delivery
//	GOFAIL_FAILPOINTS='importBeforeReply=20%return("kill")'        # one reply in five never sent
//
// A panic in a gRPC handler's goroutine is recovered by services/platform/grpcserver (the caller gets
// INTERNAL and the process lives on); in any other goroutine it ends the process. A name that is
// not one of the points below makes the process exit at start, so that a misspelt test does not
// pass silently. GOFAIL_HTTP=host:port serves gofail's HTTP endpoint to set terms at run time
// (`curl -X PUT -d 'return("kill")' host:port/storeAfterCommit`).
//
// services/devtools/crashtest starts real processes with these points armed at random and checks that
// nothing acknowledged is lost.
package failpoint

import (
	"fmt"
	"os"
	"slices"
	"strings"

	gofail "go.etcd.io/gofail/runtime"
)

// The points. Each is called at exactly one place; the comment says where and what a crash there
// means.
const (
	// StoreBeforeCommit is in store.DB.Update after the transaction's function returned nil,
	// just before bbolt commits: a crash here must lose the whole transaction, and nothing of
	// it was acknowledged.
	StoreBeforeCommit = "storeBeforeCommit"
	// StoreAfterCommit is in store.DB.Update right after a successful commit, before the caller
	// learns of it: the change is on disk but was never acknowledged, so a retry (same request
	// id, same outbox entry) must find it and not apply it twice.
	StoreAfterCommit = "storeAfterCommit"
	// RelayAfterDeliver is in the outbox relay after the peer accepted a batch of entries and
	// before they are removed: after a crash the entries are delivered again, and the peer must
	// count them once (delivery is at least once, effect exactly once).
	RelayAfterDeliver = "relayAfterDeliver"
	// ImportAfterBatchCommit is in the roster import's committer after a batch of rows (and the
	// import record that counts them) committed: a crash leaves the import resumable from that
	// batch.
	ImportAfterBatchCommit = "importAfterBatchCommit"
	// ImportBeforeReply is in the roster import after the last batch committed and the summary
	// was read, just before the reply is sent: the import is complete on disk and a re-send
	// must return the same summary without changing anything.
	ImportBeforeReply = "importBeforeReply"
)

// Names lists every point.
var Names = []string{StoreBeforeCommit, StoreAfterCommit, RelayAfterDeliver, ImportAfterBatchCommit, ImportBeforeReply}

// Kill is the `return` value that makes a point kill its process with SIGKILL.
const Kill = "kill"

// enabled is fixed at start: failpoints cost nothing unless the environment asks for them.
var enabled = os.Getenv("GOFAIL_FAILPOINTS") != "" || os.Getenv("GOFAIL_HTTP") != ""

// points holds the registered points (only when enabled; read-only after init).
var points map[string]*gofail.Failpoint

func init() {
	if !enabled {
		return
	}
	for _, pair := range strings.Split(os.Getenv("GOFAIL_FAILPOINTS"), ";") {
		name, _, _ := strings.Cut(pair, "=")
		if name != "" && !slices.Contains(Names, name) {
			fmt.Fprintf(os.Stderr, "failpoint: GOFAIL_FAILPOINTS names %q, which is not a failpoint of labourlink (%s)\n",
				name, strings.Join(Names, ", "))
			os.Exit(2)
		}
	}
	points = make(map[string]*gofail.Failpoint, len(Names))
	for _, name := range Names {
		// gofail arms the point from GOFAIL_FAILPOINTS as it registers it.
		points[name] = gofail.NewFailpoint(name)
	}
}

// Enabled reports whether the process started with failpoints on.
func Enabled() bool { return enabled }

// Inject evaluates the point name: nothing at all unless failpoints are on; then whatever its
// terms say (panic, sleep, print, or kill the process for `return("kill")`).
func Inject(name string) {
	if !enabled {
		return
	}
	fp := points[name]
	if fp == nil {
		return
	}
	v, err := fp.Acquire()
	if err != nil {
		return // off, or not armed
	}
	if s, ok := v.(string); ok && s == Kill {
		fmt.Fprintf(os.Stderr, "failpoint %s: kill -9\n", name)
		killSelf()
	}
}
