package federation_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/eastwest/labourlink/services/devtools/wait"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/devtools/proctest"
	"github.com/eastwest/labourlink/services/devtools/scenario"
	"github.com/eastwest/labourlink/services/platform/identity"
	"github.com/eastwest/labourlink/services/platform/peers"
)

// TestScenarioEndsWithExactlyTwoDiscrepancies runs the whole flow in the local federation (real
// processes): roster, vacancy, matching, acceptance, batch, departure, arrival with one no-show
// and one worker who never arrives, onboarding. Once the grace period has passed, reconciliation
// shows exactly those two discrepancies, and `labourlink reconcile show` lists them.
func TestScenarioEndsWithExactlyTwoDiscrepancies(t *testing.T) {
	t.Parallel()
	runScenario(t, false)
}

// TestScenarioWithTLS is the same scenario in `labourlink dev -tls`: every call between the
// services goes over mTLS and through authorisation, and the operator drives it with the
// national full-rights certificate.
func TestScenarioWithTLS(t *testing.T) {
	t.Parallel()
	runScenario(t, true)
}

// TestScenarioWithReplicas is the same scenario, with the same counts, in `labourlink dev
// -replicas 3 -tls`: the provinces and the operator given the three coordination nodes, and
// every node answering the same discrepancies and batch reconciliation at the end; the routes
// between the nodes are mTLS as the gRPC calls are.
func TestScenarioWithReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("three coordination nodes")
	}
	t.Parallel()
	d := runScenario(t, true, "-replicas", "3")
	for i := range 3 {
		b, err := os.ReadFile(filepath.Join(d.data, fmt.Sprintf("coordination-%d.log", i)))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"routes_mtls":true`) {
			t.Errorf("coordination-%d's routes are not mTLS:\n%s", i, b)
		}
	}
}

func runScenario(t *testing.T, withTLS bool, extra ...string) *devProcess {
	const grace = 5 * time.Second
	args := append([]string{"-grace-period", grace.String()}, extra...)
	if withTLS {
		args = append(args, "-tls")
	}
	d := startDev(t, args...)
	var po peers.Options
	var cliTLS []string
	if withTLS {
		dir := filepath.Join(d.data, "certs")
		ca, cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "operator-national-full.pem"), filepath.Join(dir, "operator-national-full-key.pem")
		cfg, err := identity.ClientTLS(ca, cert, key)
		if err != nil {
			t.Fatal(err)
		}
		po.Creds = credentials.NewTLS(cfg)
		cliTLS = []string{"-tls-ca", ca, "-tls-cert", cert, "-tls-key", key}
	}
	conn := func(kind string) *grpc.ClientConn {
		cc, err := peers.Dial(d.addrs[kind], po)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}
	d.addrs["coordination"] = d.coordination // every node, with -replicas
	coord, sending, receiving := conn("coordination"), conn("sending"), conn("receiving")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := scenario.Run(ctx, scenario.Conns{Coordination: coord, Sending: sending, Receiving: receiving}, scenario.Options{
		Workers: 6,
		Step:    func(msg string) { t.Log(msg) },
	})
	if err != nil {
		t.Fatal(err)
	}

	recon := coordinationv1.NewReconciliationServiceClient(coord)
	want := map[string]coordinationv1.DiscrepancyKind{
		res.NoShow:  coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_NO_SHOW,
		res.Missing: coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_UNACCOUNTED,
	}
	var got []*coordinationv1.Discrepancy
	wait.Until(grace+60*time.Second, func() bool {
		resp, err := recon.ListDiscrepancies(ctx, &coordinationv1.ListDiscrepanciesRequest{PageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		got = resp.GetDiscrepancies()
		return len(got) >= 2
	})
	if len(got) != 2 {
		t.Fatalf("want exactly 2 open discrepancies, got %d: %v", len(got), got)
	}
	for _, dsc := range got {
		if k, ok := want[dsc.GetWorkerId()]; !ok || k != dsc.GetKind() || dsc.GetBatchId() != res.BatchID ||
			dsc.GetState() != coordinationv1.DiscrepancyState_DISCREPANCY_STATE_OPEN {
			t.Errorf("unexpected discrepancy %v (want no-show %s and unaccounted %s on batch %s)", dsc, res.NoShow, res.Missing, res.BatchID)
		}
	}
	// With -replicas the connection balances over the nodes, and the one answering this call
	// may be a few milliseconds behind the one that answered the last (docs/replication.md, "A
	// node behind"): wait for it, as for the discrepancies above.
	var b *coordinationv1.BatchReconciliation
	wait.Until(30*time.Second, func() bool {
		batch, err := recon.GetBatchReconciliation(ctx, &coordinationv1.GetBatchReconciliationRequest{BatchId: res.BatchID, SendingRegion: regions.IDOwner(res.BatchID)})
		if err != nil {
			t.Fatal(err)
		}
		b = batch.GetReconciliation()
		return b.GetUnaccounted() > 0
	})
	if b.GetDeparted() != 6 || b.GetArrived() != 4 || b.GetNoShow() != 1 || b.GetUnaccounted() != 1 || b.GetUnexpected() != 0 || b.GetUnverified() != 0 {
		t.Errorf("batch reconciliation: %v", b)
	}

	// Every node answers the same figures (one node alone: the same as above).
	var figures []string
	for _, addr := range strings.Split(d.coordination, ",") {
		cc, err := peers.Dial(addr, po)
		if err != nil {
			t.Fatal(err)
		}
		nr := coordinationv1.NewReconciliationServiceClient(cc)
		var f string
		if !wait.Until(30*time.Second, func() bool {
			ds, err := nr.ListDiscrepancies(ctx, &coordinationv1.ListDiscrepanciesRequest{PageSize: 100})
			if err != nil {
				t.Fatalf("ListDiscrepancies on %s: %v", addr, err)
			}
			br, err := nr.GetBatchReconciliation(ctx, &coordinationv1.GetBatchReconciliationRequest{BatchId: res.BatchID, SendingRegion: regions.IDOwner(res.BatchID)})
			if err != nil {
				t.Fatalf("GetBatchReconciliation on %s: %v", addr, err)
			}
			f = prototext.Format(ds) + prototext.Format(br)
			return len(ds.GetDiscrepancies()) == 2
		}) {
			t.Errorf("node %s: %s", addr, f)
		}
		cc.Close()
		figures = append(figures, f)
	}
	for i := 1; i < len(figures); i++ {
		if figures[i] != figures[0] {
			t.Errorf("the nodes' figures differ:\n%s\n--\n%s", figures[0], figures[i])
		}
	}

	// A second run would propose the first run's workers: it is refused before it changes anything.
	if _, err := scenario.Run(ctx, scenario.Conns{Coordination: coord, Sending: sending, Receiving: receiving}, scenario.Options{}); !errors.Is(err, scenario.ErrNotEmpty) {
		t.Errorf("a scenario on a federation with data: %v, want ErrNotEmpty", err)
	}

	// The worker who came home: RETURNED_HOME on the sending roster, the one trip ended.
	home, err := sendingv1.NewRosterServiceClient(sending).GetWorker(ctx, &sendingv1.GetWorkerRequest{Name: "workers/" + res.ReturnedHome})
	if err != nil {
		t.Fatal(err)
	}
	if w := home.GetWorker(); w.GetStatus() != sendingv1.WorkerStatus_WORKER_STATUS_RETURNED_HOME || len(w.GetTrips()) != 1 ||
		w.GetTrips()[0].GetBatchId() != res.BatchID || w.GetTrips()[0].GetReturnTime() == nil ||
		w.GetTrips()[0].GetArrivalTime() == nil || w.GetTrips()[0].GetOnboardDate() == nil || w.GetTrips()[0].GetEmployerName() == "" {
		t.Errorf("worker home = status %s, trips %v; want RETURNED_HOME with the trip on %s followed (arrival, onboarding, employer) and ended", w.GetStatus(), w.GetTrips(), res.BatchID)
	}

	// The CLI shows the same, laid out for reading.
	out, err := exec.Command(proctest.Binary(t), append([]string{"reconcile", "show", "-addr", d.addrs["coordination"]}, cliTLS...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("reconcile show: %v\n%s", err, out)
	}
	text := string(out)
	for _, w := range []string{res.BatchID, res.NoShow, res.Missing} {
		if !strings.Contains(text, w) {
			t.Errorf("reconcile show does not mention %s:\n%s", w, text)
		}
	}
	t.Logf("reconcile show:\n%s", text)
	return d
}
