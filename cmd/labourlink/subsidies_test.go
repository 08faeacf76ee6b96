package main

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
	"go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending"
	"github.com/eastwest/labourlink/services/sending/roster"
)

// subsidyLedger is a coordination service whose clock the test moves, with its ledger client.
type subsidyLedger struct {
	addr  string
	clock atomic.Int64 // unix nanoseconds
	lc    coordinationv1.LedgerServiceClient
	ec    coordinationv1.EligibilityServiceClient
}

func startSubsidyLedger(t *testing.T, now time.Time) *subsidyLedger {
	t.Helper()
	l := &subsidyLedger{}
	l.clock.Store(now.UnixNano())
	l.addr = startCoordination(t, func() time.Time { return time.Unix(0, l.clock.Load()) })
	cc, err := peers.Dial(l.addr, peers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	l.lc, l.ec = coordinationv1.NewLedgerServiceClient(cc), coordinationv1.NewEligibilityServiceClient(cc)
	return l
}

func (l *subsidyLedger) advance(d time.Duration) { l.clock.Add(int64(d)) }

func (l *subsidyLedger) report(t *testing.T, events ...*coordinationv1.LedgerEvent) {
	t.Helper()
	resp, err := l.lc.ReportEvents(t.Context(), &coordinationv1.ReportEventsRequest{Events: events})
	if err != nil || len(resp.GetRefusals()) > 0 {
		t.Fatalf("ReportEvents: %v %v", err, resp.GetRefusals())
	}
}

// trip is the ledger events of one trip of worker n of Guizhou to Guangdong, departing at dep:
// arrival and onboarding the next day, and a 3-month checkpoint when checkpoint is set.
func trip(n int, batch string, dep time.Time, poor, checkpoint bool) []*coordinationv1.LedgerEvent {
	worker := fmt.Sprintf("520000-W%03d", n)
	mk := func(id string, kind coordinationv1.EventKind, at time.Time) *coordinationv1.LedgerEvent {
		e := &coordinationv1.LedgerEvent{EventId: batch + "-" + id + "-" + worker, Kind: kind, SendingRegion: "520000", ReceivingRegion: "440000",
			WorkerId: worker, BatchId: batch, OccurTime: timestamppb.New(at), ReporterRegion: "440000"}
		if kind == coordinationv1.EventKind_EVENT_KIND_DEPARTED {
			e.ReporterRegion, e.RegisteredPoor = "520000", poor
		}
		return e
	}
	on := dep.Add(24 * time.Hour)
	evs := []*coordinationv1.LedgerEvent{
		mk("dep", coordinationv1.EventKind_EVENT_KIND_DEPARTED, dep),
		mk("arr", coordinationv1.EventKind_EVENT_KIND_ARRIVED, dep.Add(10*time.Hour)),
		mk("on", coordinationv1.EventKind_EVENT_KIND_ONBOARDED, on),
	}
	if checkpoint {
		cp := mk("cp3", coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT, on.AddDate(0, 3, 0))
		cp.Details = &coordinationv1.LedgerEvent_EmploymentCheckpoint{EmploymentCheckpoint: &coordinationv1.EmploymentCheckpointDetails{Months: 3, StillEmployed: true}}
		evs = append(evs, cp)
	}
	return evs
}

// eligibleRPC is every page of a rule's list for Guizhou in 2026 as of asOf, by RPC, as export rows.
func eligibleRPC(t *testing.T, c coordinationv1.EligibilityServiceClient, rule string, asOf *timestamppb.Timestamp, names map[string][2]string) [][]string {
	t.Helper()
	var rows [][]string
	req := &coordinationv1.ListEligibleWorkersRequest{SendingRegion: "520000", Rule: rule, PeriodStart: &commonv1.Date{Year: 2026, Month: 1, Day: 1},
		PeriodEnd: &commonv1.Date{Year: 2027, Month: 1, Day: 1}, AsOf: asOf, PageSize: 2}
	at := asOf.AsTime().In(civil.Zone).Format(time.RFC3339Nano)
	for {
		resp, err := c.ListEligibleWorkers(t.Context(), req)
		if err != nil {
			t.Fatalf("ListEligibleWorkers: %v", err)
		}
		for _, e := range resp.GetWorkers() {
			e := fromCoordination(e)
			if names != nil {
				n := names[e.workerID]
				e.name, e.homeCounty = n[0], n[1]
			}
			rows = append(rows, e.cells(names != nil, at))
		}
		if resp.GetNextPageToken() == "" {
			return rows
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// readCSVExport reads an exported CSV file, checking it is UTF-8 with BOM and CRLF line ends.
func readCSVExport(t *testing.T, path string) [][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\ufeff")) {
		t.Fatalf("%s does not start with a UTF-8 BOM", path)
	}
	if bytes.Count(b, []byte("\n")) != bytes.Count(b, []byte("\r\n")) {
		t.Fatalf("%s has line ends other than CRLF", path)
	}
	rows, err := csv.NewReader(bytes.NewReader(b[3:])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// readXLSXExport reads the sheet of an exported workbook, checking every cell is a text cell.
func readXLSXExport(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.GetSheetList(); len(got) != 1 || got[0] != subsidiesSheet {
		t.Fatalf("sheets %v, want [%s]", got, subsidiesSheet)
	}
	rows, err := f.GetRows(subsidiesSheet)
	if err != nil {
		t.Fatal(err)
	}
	for r := range rows {
		for c := range rows[r] {
			cell, _ := excelize.CoordinatesToCellName(c+1, r+1)
			if typ, err := f.GetCellType(subsidiesSheet, cell); err != nil || (typ != excelize.CellTypeSharedString && typ != excelize.CellTypeInlineString) {
				t.Fatalf("%s %s: type %v (%v), want a text cell", path, cell, typ, err)
			}
		}
	}
	for i := range rows { // trailing empty cells are dropped by GetRows
		for len(rows[i]) < len(rows[0]) {
			rows[i] = append(rows[i], "")
		}
	}
	return rows
}

// asOfPrinted is the time a listing says it is as of.
var asOfPrinted = regexp.MustCompile(`-as-of (\S+)`)

// TestSubsidiesListExports: the CSV and .xlsx exports of `subsidies list` hold, row for row, what
// the RPC lists (every page, every rule), each worker once per rule; the same -as-of gives the
// same file after later events; `subsidies rules` shows the rules.
func TestSubsidiesListExports(t *testing.T) {
	t.Parallel()
	l := startSubsidyLedger(t, time.Date(2026, 11, 1, 12, 0, 0, 0, civil.Zone))
	jan := time.Date(2026, 1, 10, 9, 0, 0, 0, civil.Zone)
	for n := range 5 {
		// Workers 0, 2, 4 registered-poor (transport); 0, 1, 2 employed 3 months (job-stability).
		l.report(t, trip(n, fmt.Sprintf("520000-B%03d", n), jan.AddDate(0, 0, n), n%2 == 0, n < 3)...)
	}
	// Worker 0 goes out a second time in 2026: still one entry per rule.
	l.report(t, trip(0, "520000-B100", time.Date(2026, 6, 1, 9, 0, 0, 0, civil.Zone), true, true)...)
	l.advance(time.Hour)

	dir := t.TempDir()
	csvFile, xlsxFile := filepath.Join(dir, "list.csv"), filepath.Join(dir, "list.xlsx")
	out := runOK(t, l.addr, "subsidies", "list", "-province", "52", "-period", "2026", "-page-size", "1", "-o", csvFile)
	m := asOfPrinted.FindStringSubmatch(out)
	if !strings.Contains(out, "wrote 6 entries") || m == nil {
		// The export prints the as-of time it used: take it from the table listing.
		out = runOK(t, l.addr, "subsidies", "list", "-province", "520000", "-period", "2026")
		m = asOfPrinted.FindStringSubmatch(out)
	}
	if m == nil {
		t.Fatalf("no as-of time in\n%s", out)
	}
	asOfTime, err := time.Parse(time.RFC3339Nano, m[1])
	if err != nil {
		t.Fatal(err)
	}
	asOf := timestamppb.New(asOfTime)
	runOK(t, l.addr, "subsidies", "list", "-province", "52", "-period", "2026", "-as-of", m[1], "-o", csvFile)
	runOK(t, l.addr, "subsidies", "list", "-province", "52", "-period", "2026", "-as-of", m[1], "-o", xlsxFile, "-page-size", "2")

	want := [][]string{subsidyColumns(false)}
	for _, rule := range []string{"transport", "job-stability"} {
		want = append(want, eligibleRPC(t, l.ec, rule, asOf, nil)...)
	}
	if len(want) != 1+3+3 {
		t.Fatalf("the RPC lists %d entries, the script says 3 transport and 3 job-stability:\n%v", len(want)-1, want)
	}
	once := map[string]bool{}
	for _, r := range want[1:] {
		k := r[0] + "/" + r[1]
		if once[k] {
			t.Errorf("worker %s listed twice under %s", r[0], r[1])
		}
		once[k] = true
	}
	gotCSV, gotXLSX := readCSVExport(t, csvFile), readXLSXExport(t, xlsxFile)
	for name, got := range map[string][][]string{"csv": gotCSV, "xlsx": gotXLSX} {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s export:\n%v\nwant (the RPC's):\n%v", name, got, want)
		}
	}
	before, err := os.ReadFile(csvFile)
	if err != nil {
		t.Fatal(err)
	}

	// Later events: a new registered-poor worker out in 2026, and worker 3 employed 3 months on a
	// new trip. As of the same time, the same file; as of now, the new facts.
	l.advance(time.Hour)
	l.report(t, trip(9, "520000-B109", time.Date(2026, 7, 1, 9, 0, 0, 0, civil.Zone), true, true)...)
	l.report(t, trip(3, "520000-B103", time.Date(2026, 7, 2, 9, 0, 0, 0, civil.Zone), false, true)...)
	l.advance(time.Hour)
	runOK(t, l.addr, "subsidies", "list", "-province", "52", "-period", "2026", "-as-of", m[1], "-o", csvFile)
	if again, _ := os.ReadFile(csvFile); !bytes.Equal(again, before) {
		t.Errorf("the same -as-of after later events gives another file:\n%s\nwas\n%s", again, before)
	}
	out = runOK(t, l.addr, "subsidies", "list", "-province", "52", "-period", "2026", "-rule", "transport")
	if !strings.Contains(out, "520000-W009") || !strings.Contains(out, "4 entries (4 workers) eligible") {
		t.Errorf("the list as of now lacks the later worker:\n%s", out)
	}

	// -o json is the response, all pages in one.
	out = runOK(t, l.addr, "subsidies", "list", "-province", "52", "-period", "2026", "-rule", "job-stability", "-as-of", m[1], "-o", "json", "-page-size", "1")
	if strings.Count(out, `"worker_id"`) != 3 || !strings.Contains(out, `"fact_event_id"`) {
		t.Errorf("-o json:\n%s", out)
	}
	out = runOK(t, l.addr, "subsidies", "rules")
	for _, w := range []string{"transport", "job-stability", "DEPARTED", "EMPLOYMENT_CHECKPOINT", "NO_SHOW"} {
		if !strings.Contains(out, w) {
			t.Errorf("subsidies rules: no %q in\n%s", w, out)
		}
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"-period", "2026"}, "-province is required"},
		{[]string{"-province", "5201", "-period", "2026"}, "-province"},
		{[]string{"-province", "52", "-period", "26"}, "-period"},
		{[]string{"-province", "52", "-o", "list.txt"}, "use table, json, or a file name"},
		{[]string{"-province", "52", "-rule", "nope"}, "unknown rule"},
		{[]string{"-province", "52", "-names"}, "give -rule"},
	} {
		if code, _, errOut := runRoster(t, l.addr, append([]string{"subsidies", "list"}, bad.args...)...); code == 0 || !strings.Contains(errOut, bad.want) {
			t.Errorf("subsidies list %v: exit %d, %s; want an error with %q", bad.args, code, errOut, bad.want)
		}
	}
}

// TestSubsidiesNamesOnTheSendingSide: `subsidies list -names` asks Guizhou's sending service,
// which fetches the list from the coordination service over its own connection and joins the
// names from its roster: the same entries as the coordination service's, with the names; the
// coordination service's answer has no name.
func TestSubsidiesNamesOnTheSendingSide(t *testing.T) {
	t.Parallel()
	l := startSubsidyLedger(t, time.Date(2026, 11, 1, 12, 0, 0, 0, civil.Zone))
	jan := time.Date(2026, 1, 10, 9, 0, 0, 0, civil.Zone)
	names := map[string][2]string{}
	var workers []*sendingv1.Worker
	for n, name := range []string{"王小明", "阿依古丽·买买提", "李四"} {
		id := fmt.Sprintf("520000-W%03d", n)
		names[id] = [2]string{name, "520102"}
		workers = append(workers, &sendingv1.Worker{WorkerId: id, FullName: name, HomeCounty: "520102", RegisteredPoor: true})
		l.report(t, trip(n, fmt.Sprintf("520000-B%03d", n), jan.AddDate(0, 0, n), true, true)...)
	}
	// A worker of the ledger the roster no longer has: listed without a name.
	l.report(t, trip(7, "520000-B007", jan, true, false)...)
	names["520000-W007"] = [2]string{"", ""}
	l.advance(time.Hour)
	snd := serveInProcess(t, "sending", sending.Schema, func(db *store.DB) (bgService, error) {
		err := db.Update(func(tx *bbolt.Tx) error {
			for _, w := range workers {
				if err := store.PutProto(tx.Bucket(roster.BucketWorkers), []byte(w.GetWorkerId()), w); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		return sending.New(db, nil, sending.Config{Region: "520000", Coordination: l.addr})
	})
	cc, err := peers.Dial(snd, peers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	sc := sendingv1.NewSubsidyServiceClient(cc)
	req := &sendingv1.ListEligibleWorkersRequest{Rule: "transport", PeriodStart: &commonv1.Date{Year: 2026, Month: 1, Day: 1}, PeriodEnd: &commonv1.Date{Year: 2027, Month: 1, Day: 1}}
	var first *sendingv1.ListEligibleWorkersResponse
	waitFor(t, "the sending service connected to the coordination service", func() bool {
		first, err = sc.ListEligibleWorkers(t.Context(), req)
		return status.Code(err) != codes.Unavailable
	})
	if err != nil {
		t.Fatalf("SubsidyService.ListEligibleWorkers: %v", err)
	}
	if len(first.GetWorkers()) != 4 || first.GetWorkers()[1].GetName() != "阿依古丽·买买提" {
		t.Fatalf("the sending service's list: %v", first.GetWorkers())
	}
	// The coordination service's refusal comes back with its field.
	bad := &sendingv1.ListEligibleWorkersRequest{Rule: "nope", PeriodStart: req.PeriodStart, PeriodEnd: req.PeriodEnd}
	if _, err := sc.ListEligibleWorkers(t.Context(), bad); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "unknown rule") {
		t.Errorf("an unknown rule: %v, want INVALID_ARGUMENT from the coordination service", err)
	}

	dir := t.TempDir()
	at := first.GetAsOf().AsTime().In(civil.Zone).Format(time.RFC3339Nano)
	for _, file := range []string{filepath.Join(dir, "names.csv"), filepath.Join(dir, "names.xlsx")} {
		runOK(t, snd, "subsidies", "list", "-names", "-province", "52", "-period", "2026", "-rule", "transport,job-stability",
			"-as-of", at, "-page-size", "1", "-o", file)
		want := [][]string{subsidyColumns(true)}
		for _, rule := range []string{"transport", "job-stability"} {
			want = append(want, eligibleRPC(t, l.ec, rule, first.GetAsOf(), names)...)
		}
		got := readCSVExport
		if isWorkbook(file) {
			got = readXLSXExport
		}
		if rows := got(t, file); fmt.Sprint(rows) != fmt.Sprint(want) {
			t.Errorf("%s:\n%v\nwant the coordination service's list with the roster's names:\n%v", file, rows, want)
		}
	}
	out := runOK(t, snd, "subsidies", "list", "-names", "-period", "2026", "-rule", "transport", "-as-of", at)
	if !strings.Contains(out, "阿依古丽·买买提") || !strings.Contains(out, "4 entries (4 workers) eligible") {
		t.Errorf("the table with names:\n%s", out)
	}
	// The coordination service's own list never carries a name.
	out = runOK(t, l.addr, "subsidies", "list", "-province", "52", "-period", "2026", "-rule", "transport", "-o", "json")
	for _, n := range names {
		if n[0] != "" && strings.Contains(out, n[0]) {
			t.Errorf("the coordination service's list names %s:\n%s", n[0], out)
		}
	}
	if code, _, errOut := runRoster(t, snd, "subsidies", "list", "-names", "-province", "51", "-period", "2026", "-rule", "transport"); code == 0 || !strings.Contains(errOut, "not of province 510000") {
		t.Errorf("-names -province 51 against Guizhou's service: exit %d, %s", code, errOut)
	}
}
