package main

import (
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending/roster"
)

// The local take-over from the CLI: register employers, resume one, place a returnee, and read
// the summary table with the recovery rate as numerator and denominator.
func TestLocalCommands(t *testing.T) {
	addr, db := rosterTestService(t)
	const home = "520000-AAAAAAAAAAAAAAAA"
	err := db.Update(func(tx *bbolt.Tx) error {
		return store.PutProto(tx.Bucket(roster.BucketWorkers), []byte(home), &sendingv1.Worker{WorkerId: home, Status: sendingv1.WorkerStatus_WORKER_STATUS_RETURNED_HOME})
	})
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string { t.Helper(); return runOK(t, addr, args...) }
	if out := run("local", "add", "-name", "花江镇扶贫车间", "-kind", "workshop", "-county", "520424", "-capacity", "3"); !strings.Contains(out, "registered 520000-L00000001") {
		t.Fatalf("local add:\n%s", out)
	}
	run("local", "add", "-name", "护林员", "-kind", "post", "-county", "520424", "-capacity", "1", "-resumed")
	code, _, errOut := runRoster(t, addr, "local", "place", home, "520000-L00000001")
	if code == 0 || !strings.Contains(errOut, "LOCAL_EMPLOYER_NOT_RESUMED") {
		t.Fatalf("placing with an employer not resumed: exit %d\n%s", code, errOut)
	}
	run("local", "update", "520000-L00000001", "-resumed", "yes")
	if out := run("local", "place", home, "520000-L00000001"); !strings.Contains(out, "1 of 3 places taken") {
		t.Fatalf("local place:\n%s", out)
	}
	out := run("local", "list")
	for _, want := range []string{"花江镇扶贫车间", "workshop 扶贫车间", "520424", "护林员"} {
		if !strings.Contains(out, want) {
			t.Fatalf("local list: no %q in\n%s", want, out)
		}
	}
	out = run("local", "summary")
	for _, want := range []string{"100.0% (2/2)", "workshop 扶贫车间", "post 公益性岗位"} {
		if !strings.Contains(out, want) {
			t.Fatalf("local summary: no %q in\n%s", want, out)
		}
	}
	if code, _, errOut := runRoster(t, addr, "local", "add", "-name", "x", "-kind", "farm"); code == 0 || !strings.Contains(errOut, "workshop") {
		t.Fatalf("bad -kind: exit %d %s", code, errOut)
	}
}
