package coordination

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/coordination/ledger"
	"github.com/eastwest/labourlink/services/platform/store"
)

// The national run: the queries a national operator runs, through the real service on a
// loopback gRPC port, on a ledger of LABOURLINK_BENCH_EVENTS events (default 1,000,000) over
// the pairings of all 31 provinces, generated straight into a coordination bbolt file by the
// ledger's own write path (ledger.Generate: the checks, indexes, counts, verifiable log and
// reconciliation of ReportEvents, without gRPC, which would take hours at 10M). The file is
// kept in LABOURLINK_BENCH_DIR (default the system's temporary directory) and reused by later
// runs of the same size:
//
//	LABOURLINK_BENCH_EVENTS=10000000 go test ./services/coordination -run '^$' -bench NationalRun -benchtime 20x -benchmem -timeout 3h

// nationalPairings are the 11 east–west pairings of 2021 (regions.DefaultPairings) and, so that
// every one of the 31 provinces is in the run, the north-eastern and central provinces and
// Tibet, Xinjiang and Hainan paired where their workers mostly go (not an official list: a
// benchmark's spread of the load). 9 receiving and 22 sending provinces.
func nationalPairings() []regions.Pairing {
	return append(regions.DefaultPairings(),
		regions.Pairing{Receiving: "320000", Sending: "210000"},
		regions.Pairing{Receiving: "330000", Sending: "220000"},
		regions.Pairing{Receiving: "440000", Sending: "230000"},
		regions.Pairing{Receiving: "110000", Sending: "540000"},
		regions.Pairing{Receiving: "440000", Sending: "650000"},
		regions.Pairing{Receiving: "330000", Sending: "340000"},
		regions.Pairing{Receiving: "440000", Sending: "360000"},
		regions.Pairing{Receiving: "440000", Sending: "430000"},
		regions.Pairing{Receiving: "310000", Sending: "420000"},
		regions.Pairing{Receiving: "320000", Sending: "410000"},
		regions.Pairing{Receiving: "110000", Sending: "130000"},
		regions.Pairing{Receiving: "120000", Sending: "140000"},
		regions.Pairing{Receiving: "460000", Sending: "450000"},
	)
}

// nationalStart is the first departure of the generated year, nationalNow the service's clock:
// a month after the year, when its checkpoints of 3 months are due up to late October.
var (
	nationalStart = time.Date(2025, 1, 1, 8, 0, 0, 0, civil.Zone)
	nationalNow   = time.Date(2026, 1, 31, 12, 0, 0, 0, civil.Zone)
)

// nationalTrip returns the events of trip w (45 trips a batch, a batch in one pairing, one
// worker in twenty out a second time, on a batch of the same pairing a cycle later), in the order
// reported. Most trips depart, arrive, are onboarded and pass their 3-month checkpoint (when it
// is due before nationalNow); one in 200 never arrives (an UNACCOUNTED discrepancy after the
// grace period), one in 100 arrives without a departure reported (UNEXPECTED), one in 50 leaves
// the job and returns home, one in 100 has an incident, one in 150 is a no-show.
func nationalTrip(w int, pairings []regions.Pairing) []*coordinationv1.LedgerEvent {
	b := w / 45
	p := pairings[nationalPairingOf(b, len(pairings))]
	worker := w
	if cycle := len(pairings) * (len(pairings) + 1) / 2; w%20 == 19 && b >= cycle {
		worker = w - 45*cycle // the same place in the batch a cycle before: the same pairing
	}
	batch := fmt.Sprintf("%s-%s-b%07d", p.Sending, p.Receiving, b)
	dep := nationalStart.Add(time.Duration(b%360)*24*time.Hour + time.Duration(w%600)*time.Minute)
	var out []*coordinationv1.LedgerEvent
	add := func(kind coordinationv1.EventKind, at time.Time) *coordinationv1.LedgerEvent {
		e := &coordinationv1.LedgerEvent{
			EventId: fmt.Sprintf("%s-%d-%d", batch, w%45, len(out)), Kind: kind,
			WorkerId: fmt.Sprintf("w%09d", worker), BatchId: batch,
			SendingRegion: p.Sending, ReceivingRegion: p.Receiving, ReporterRegion: p.Receiving,
			OccurTime: timestamppb.New(at), RegisteredPoor: worker%3 != 2,
		}
		if ledger.SendingSide(kind) {
			e.ReporterRegion = p.Sending
		}
		out = append(out, e)
		return e
	}
	switch {
	case w%150 == 7:
		add(coordinationv1.EventKind_EVENT_KIND_NO_SHOW, dep)
		return out
	case w%100 == 3:
		add(coordinationv1.EventKind_EVENT_KIND_ARRIVED, dep.Add(30*time.Hour))
		return out
	}
	add(coordinationv1.EventKind_EVENT_KIND_DEPARTED, dep)
	if w%200 == 1 {
		return out
	}
	add(coordinationv1.EventKind_EVENT_KIND_ARRIVED, dep.Add(30*time.Hour))
	on := dep.Add(72 * time.Hour)
	add(coordinationv1.EventKind_EVENT_KIND_ONBOARDED, on)
	if w%100 == 11 {
		e := add(coordinationv1.EventKind_EVENT_KIND_INCIDENT, on.Add(10*24*time.Hour))
		e.Details = &coordinationv1.LedgerEvent_Incident{Incident: &coordinationv1.IncidentDetails{Kind: "work injury"}}
	}
	if w%50 == 5 {
		left := on.AddDate(0, 1, 0)
		e := add(coordinationv1.EventKind_EVENT_KIND_LEFT_JOB, left)
		e.Details = &coordinationv1.LedgerEvent_LeftJob{LeftJob: &coordinationv1.LeftJobDetails{Reason: "contract ended"}}
		add(coordinationv1.EventKind_EVENT_KIND_RETURNED_HOME, left.Add(48*time.Hour))
		return out
	}
	if cp := on.AddDate(0, 3, 0); cp.Before(nationalNow) {
		e := add(coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT, cp)
		e.Details = &coordinationv1.LedgerEvent_EmploymentCheckpoint{EmploymentCheckpoint: &coordinationv1.EmploymentCheckpointDetails{Months: 3, StillEmployed: true}}
	}
	return out
}

// nationalPairingOf spreads batches over the pairings unevenly: the pairing of index i gets a
// share of about (n-i)/sum, the first (Beijing–Inner Mongolia) the most, as provinces differ.
func nationalPairingOf(b, n int) int {
	total := n * (n + 1) / 2
	r := (b * 7919) % total
	for i := 0; i < n; i++ {
		if r < n-i {
			return i
		}
		r -= n - i
	}
	return n - 1
}

// nationalFile is the benchmark's coordination directory, generated the first time.
func nationalFile(b *testing.B) (dir string, events int) {
	b.Helper()
	n := 1_000_000
	if s := os.Getenv("LABOURLINK_BENCH_EVENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1000 {
			b.Fatalf("LABOURLINK_BENCH_EVENTS=%q: want a number of events, at least 1000", s)
		}
	}
	base := os.Getenv("LABOURLINK_BENCH_DIR")
	if base == "" {
		base = os.TempDir()
	}
	dir = filepath.Join(base, fmt.Sprintf("labourlink-national-%d", n))
	done := filepath.Join(dir, "complete")
	if _, err := os.Stat(done); err == nil {
		return dir, n
	}
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	h := newHarnessOn(b, listenLoopback, dir, zap.NewNop(), Config{}, nationalNow)
	pairings := nationalPairings()
	h.pair(b, pairings...)
	recorded, w := 0, 0
	const perTx = 20_000
	for recorded < n {
		var evs []*coordinationv1.LedgerEvent
		for len(evs) < perTx && recorded+len(evs) < n {
			for j := 0; j < 45 && recorded+len(evs) < n; j, w = j+1, w+1 { // whole batches
				trip := nationalTrip(w, pairings)
				evs = append(evs, trip[:min(len(trip), n-recorded-len(evs))]...)
			}
		}
		if err := h.db.Update(func(tx *bbolt.Tx) error { return h.s.ledger.Generate(tx, evs, nationalNow) }); err != nil {
			b.Fatal(err)
		}
		recorded += len(evs)
		if recorded%(500*perTx) < perTx {
			b.Logf("generated %d events in %s", recorded, time.Since(start).Round(time.Second))
		}
	}
	h.close()
	b.Logf("generated %d events (%d trips) in %s", n, w, time.Since(start).Round(time.Second))
	if err := os.WriteFile(done, []byte(time.Since(start).String()+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	return dir, n
}

// BenchmarkNationalRun times, call by call through the service on loopback gRPC, the queries of
// a national operator on the generated ledger.
func BenchmarkNationalRun(b *testing.B) {
	dir, n := nationalFile(b)
	fi, err := os.Stat(filepath.Join(dir, "coordination.db"))
	if err != nil {
		b.Fatal(err)
	}
	h := newHarnessOn(b, listenLoopback, dir, zap.NewNop(), Config{}, nationalNow)
	b.Cleanup(h.close)
	ctx := context.Background()
	year := int32(civil.Year(nationalStart))
	pairings := nationalPairings()
	var provinces []string
	seen := map[string]bool{}
	for _, p := range pairings {
		for _, c := range []string{p.Sending, p.Receiving} {
			if !seen[c] {
				seen[c] = true
				provinces = append(provinces, c)
			}
		}
	}
	period := func() (*commonv1.Date, *commonv1.Date) {
		return &commonv1.Date{Year: year, Month: 1, Day: 1}, &commonv1.Date{Year: year, Month: 12, Day: 31}
	}
	run := func(name string, fn func() (int, error)) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			items := 0
			for b.Loop() {
				k, err := fn()
				if err != nil {
					b.Fatal(err)
				}
				items = k
			}
			b.ReportMetric(float64(items), "items")
			b.ReportMetric(float64(n), "events")
			b.ReportMetric(float64(fi.Size())/(1<<20), "file-MiB")
		})
	}
	run("PairingSummaries/all-pages-of-10", func() (int, error) {
		from, to := period()
		req := &coordinationv1.ListPairingSummariesRequest{PeriodStart: from, PeriodEnd: to, PageSize: 10}
		total := 0
		for {
			resp, err := h.recon.ListPairingSummaries(ctx, req)
			if err != nil {
				return 0, err
			}
			total += len(resp.GetSummaries())
			if resp.GetNextPageToken() == "" {
				return total, nil
			}
			req.PageToken = resp.GetNextPageToken()
		}
	})
	run("Assessments/national-all-pages-of-10", func() (int, error) {
		req := &coordinationv1.ListAssessmentsRequest{Year: year, PageSize: 10}
		total := 0
		for {
			resp, err := h.assess.ListAssessments(ctx, req)
			if err != nil {
				return 0, err
			}
			total += len(resp.GetAssessments())
			if resp.GetNextPageToken() == "" {
				return total, nil
			}
			req.PageToken = resp.GetNextPageToken()
		}
	})
	run("Assessments/each-of-31-provinces", func() (int, error) {
		for _, c := range provinces {
			if _, err := h.assess.GetAssessment(ctx, &coordinationv1.GetAssessmentRequest{Region: c, Year: year}); err != nil {
				return 0, fmt.Errorf("%s: %w", c, err)
			}
		}
		return len(provinces), nil
	})
	for _, kind := range []coordinationv1.DiscrepancyKind{
		coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_UNACCOUNTED, coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_UNEXPECTED,
		coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_NO_SHOW, coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_OVERDUE_CHECKPOINT,
		coordinationv1.DiscrepancyKind_DISCREPANCY_KIND_LATE_INCIDENT,
	} {
		name := strings.TrimPrefix(kind.String(), "DISCREPANCY_KIND_")
		run("Discrepancies/open/"+name+"/first-page-of-100", func() (int, error) {
			resp, err := h.recon.ListDiscrepancies(ctx, &coordinationv1.ListDiscrepanciesRequest{Kind: kind, PageSize: 100})
			return len(resp.GetDiscrepancies()), err
		})
	}
	run("Dynamics/national-as-of-year-end", func() (int, error) {
		resp, err := h.dynamics.GetNationalEmploymentDynamics(ctx, &coordinationv1.GetNationalEmploymentDynamicsRequest{
			AsOf: &commonv1.Date{Year: year, Month: 12, Day: 31}})
		return len(resp.GetBySendingRegion()), err
	})
	list := func(name string, req *coordinationv1.ListEventsRequest) {
		run("ListEvents/"+name, func() (int, error) {
			req.PageSize = 100
			resp, err := h.ledger.ListEvents(ctx, req)
			return len(resp.GetEvents()), err
		})
	}
	list("all/first-page", &coordinationv1.ListEventsRequest{})
	list("kind-INCIDENT/first-page", &coordinationv1.ListEventsRequest{Kind: coordinationv1.EventKind_EVENT_KIND_INCIDENT})
	list("kind-ABSENCE-none", &coordinationv1.ListEventsRequest{Kind: coordinationv1.EventKind_EVENT_KIND_ABSENCE})
	list("region-540000/first-page", &coordinationv1.ListEventsRequest{Region: "540000"})
	list("worker", &coordinationv1.ListEventsRequest{WorkerId: fmt.Sprintf("w%09d", n/8)})
	list("batch", &coordinationv1.ListEventsRequest{BatchId: nationalTrip(n/8, pairings)[0].GetBatchId()})
	list("time-range-december/one-call", &coordinationv1.ListEventsRequest{
		OccurTimeFrom: timestamppb.New(time.Date(2025, 12, 1, 0, 0, 0, 0, civil.Zone)), OccurTimeBefore: timestamppb.New(time.Date(2026, 1, 1, 0, 0, 0, 0, civil.Zone))})
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.Logf("%d events, file %.0f MiB, Go heap in use %.0f MiB (sys %.0f MiB), %s", n, float64(fi.Size())/(1<<20),
		float64(ms.HeapInuse)/(1<<20), float64(ms.Sys)/(1<<20), vmHWM())
	_ = store.Range{}
}

// vmHWM is the process's peak resident set (Linux), for the log.
func vmHWM() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "VmHWM unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			return strings.Join(strings.Fields(l), " ")
		}
	}
	return "VmHWM unknown"
}
