package roster

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/occupation"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/store"
)

// badRow is a generated good row with one or more fields spoiled, and what the import must say.
type badRow struct {
	name   string
	spoil  func(r *sendingv1.WorkerRow)
	fields []string // rejected fields, in column order
	reason string   // a phrase the first reason must contain
}

// oppositeSex returns the sex cell that contradicts the row's identity number.
func oppositeSex(r *sendingv1.WorkerRow) string {
	if (r.IdNumber[16]-'0')%2 == 1 {
		return "女"
	}
	return "M"
}

func badRows() []badRow {
	tooYoung := time.Now().AddDate(-15, 0, 0)
	return []badRow{
		{"no identity number", func(r *sendingv1.WorkerRow) { r.IdNumber = "" }, []string{"id_number"}, "is required"},
		{"wrong check character", func(r *sendingv1.WorkerRow) {
			last := r.IdNumber[17]
			c := byte('0')
			if last == '0' {
				c = '1'
			}
			r.IdNumber = r.IdNumber[:17] + string(c)
		}, []string{"id_number"}, "check character"},
		{"scientific notation", func(r *sendingv1.WorkerRow) { r.IdNumber = "5.20102E+17" }, []string{"id_number"}, "scientific notation"},
		{"too young", func(r *sendingv1.WorkerRow) { r.IdNumber = makeIDNumber(r.HomeCounty, tooYoung, 7) }, []string{"id_number"}, "at least 16"},
		{"sex contradicts", func(r *sendingv1.WorkerRow) { r.Sex = oppositeSex(r) }, []string{"sex"}, "identity number"},
		{"birth date contradicts", func(r *sendingv1.WorkerRow) { r.BirthDate = "1999-09-09" }, []string{"birth_date"}, "does not agree"},
		{"no name", func(r *sendingv1.WorkerRow) { r.FullName = "  " }, []string{"full_name"}, "is required"},
		{"phone 10 digits", func(r *sendingv1.WorkerRow) { r.Phone = "1380013800" }, []string{"phone"}, "got 10 digits"},
		{"phone not mobile", func(r *sendingv1.WorkerRow) { r.Phone = "12800138000" }, []string{"phone"}, "13 to 19"},
		{"county of another province", func(r *sendingv1.WorkerRow) { r.HomeCounty = "440103" }, []string{"home_county"}, "not a county of 520000"},
		{"prefecture not county", func(r *sendingv1.WorkerRow) { r.HomeCounty = "520100" }, []string{"home_county"}, "not a county"},
		{"registered poor unreadable", func(r *sendingv1.WorkerRow) { r.RegisteredPoor = "perhaps" }, []string{"registered_poor"}, "yes or no"},
		{"GENERAL occupation", func(r *sendingv1.WorkerRow) { r.Occupations = "8212;GENERAL" }, []string{"occupations"}, "GENERAL is for vacancies"},
		{"unknown occupation", func(r *sendingv1.WorkerRow) { r.Occupations = "9999" }, []string{"occupations"}, "not an ISCO-08"},
		{"unknown education", func(r *sendingv1.WorkerRow) { r.Education = "phd" }, []string{"education"}, "not an education level"},
		{"unknown destination", func(r *sendingv1.WorkerRow) { r.PreferredDestinations = "440000;999999" }, []string{"preferred_destinations"}, "not a GB/T 2260 code"},
		{"own province as destination", func(r *sendingv1.WorkerRow) { r.PreferredDestinations = "520000" }, []string{"preferred_destinations"}, "this sending province"},
		{"impossible date", func(r *sendingv1.WorkerRow) { r.AvailableFrom = "2026-02-30" }, []string{"available_from"}, "not a real date"},
		{"date in day-first order", func(r *sendingv1.WorkerRow) { r.AvailableFrom = "01/04/2026" }, []string{"available_from"}, "YYYY-MM-DD"},
		{"health check unreadable", func(r *sendingv1.WorkerRow) { r.HealthCheckPassed = "maybe" }, []string{"health_check_passed"}, "yes or no"},
		{"health check without date", func(r *sendingv1.WorkerRow) { r.HealthCheckDate = "" }, []string{"health_check_date"}, "required when health_check_passed"},
		{"health check in the future", func(r *sendingv1.WorkerRow) { r.HealthCheckDate = "2999-01-01" }, []string{"health_check_date"}, "in the future"},
		{"date without passed check", func(r *sendingv1.WorkerRow) { r.HealthCheckPassed = "否" }, []string{"health_check_date"}, "not true"},
		{"several fields", func(r *sendingv1.WorkerRow) {
			r.Phone = "110"
			r.HomeCounty = "x"
			r.Education = "?"
		}, []string{"phone", "home_county", "education"}, "11-digit"},
	}
}

func TestImportKeepsGoodRowsAndNamesBadOnes(t *testing.T) {
	t.Parallel()
	if occupation.Known("9999") {
		t.Fatal("test assumes 9999 is not an ISCO-08 unit group")
	}
	env := startRoster(t, nil, "")
	ctx := context.Background()

	// Rows 2..: good rows with a bad row after every third good one.
	bad := badRows()
	var rows []*sendingv1.WorkerRow
	var wantRejections []*commonv1.RowRejection
	good := map[string]*sendingv1.WorkerRow{}
	for i, j := 0, 0; j < len(bad) || i < 60; i++ {
		r := genRow(i)
		if i%4 == 3 && j < len(bad) {
			b := bad[j]
			j++
			b.spoil(r)
			for _, f := range b.fields {
				wantRejections = append(wantRejections, &commonv1.RowRejection{RowNumber: r.RowNumber, Field: f})
			}
		} else {
			good[r.IdNumber] = r
		}
		rows = append(rows, r)
	}

	resp, err := importRows(ctx, env.client, "mixed-1", rows, 7)
	if err != nil {
		t.Fatal(err)
	}
	sum := resp.GetSummary()
	if sum.GetImportId() != "mixed-1" || sum.GetRowsReceived() != int64(len(rows)) ||
		sum.GetCreated() != int64(len(good)) || sum.GetRejected() != int64(len(bad)) ||
		sum.GetUpdated() != 0 || sum.GetUnchanged() != 0 || sum.GetRejectionsTruncated() {
		t.Fatalf("summary = %v; want %d rows, %d created, %d rejected", sum, len(rows), len(good), len(bad))
	}
	if len(sum.GetRejections()) != len(wantRejections) {
		t.Fatalf("%d rejections, want %d: %v", len(sum.GetRejections()), len(wantRejections), sum.GetRejections())
	}
	bi := 0
	for i, got := range sum.GetRejections() {
		want := wantRejections[i]
		if got.GetRowNumber() != want.GetRowNumber() || got.GetField() != want.GetField() {
			t.Errorf("rejection %d = row %d %s, want row %d %s", i, got.GetRowNumber(), got.GetField(), want.GetRowNumber(), want.GetField())
		}
		if got.GetReason() == "" {
			t.Errorf("rejection %d has no reason", i)
		}
		// The first rejection of each bad row carries the phrase of its case.
		if i == 0 || sum.GetRejections()[i-1].GetRowNumber() != got.GetRowNumber() {
			if !strings.Contains(got.GetReason(), bad[bi].reason) {
				t.Errorf("%s: reason %q does not contain %q", bad[bi].name, got.GetReason(), bad[bi].reason)
			}
			bi++
		}
	}

	// The good rows, and only they, are in the roster, with the row's values.
	roster, indexN := rosterSnapshot(t, env.db)
	if len(roster) != len(good) || indexN != len(good) {
		t.Fatalf("roster has %d workers, %d index entries; want %d", len(roster), indexN, len(good))
	}
	for id, r := range good {
		w := roster[id]
		if w == nil {
			t.Fatalf("good row %d not stored", r.RowNumber)
		}
		if w.GetFullName() != r.FullName || w.GetPhone() != r.Phone || w.GetHomeCounty() != r.HomeCounty ||
			w.GetStatus() != sendingv1.WorkerStatus_WORKER_STATUS_AVAILABLE || !ValidWorkerID(w.GetWorkerId()) ||
			!strings.HasPrefix(w.GetWorkerId(), rosterRegion+"-") || strings.Contains(w.GetWorkerId(), id[6:14]) {
			t.Errorf("row %d stored as %v", r.RowNumber, w)
		}
	}

	// GetImport and ListImportRejections give the same, page by page.
	gi, err := env.client.GetImport(ctx, &sendingv1.GetImportRequest{ImportId: "mixed-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !gi.GetComplete() || !proto.Equal(gi.GetSummary(), sum) {
		t.Errorf("GetImport = %v, want complete and %v", gi, sum)
	}
	var listed []*commonv1.RowRejection
	tok := ""
	for {
		page, err := env.client.ListImportRejections(ctx, &sendingv1.ListImportRejectionsRequest{ImportId: "mixed-1", PageSize: 4, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.GetRejections()) > 4 {
			t.Fatalf("page of %d, asked for 4", len(page.GetRejections()))
		}
		listed = append(listed, page.GetRejections()...)
		if tok = page.GetNextPageToken(); tok == "" {
			break
		}
	}
	if len(listed) != len(sum.GetRejections()) {
		t.Fatalf("ListImportRejections gave %d, want %d", len(listed), len(sum.GetRejections()))
	}
	for i := range listed {
		if !proto.Equal(listed[i], sum.GetRejections()[i]) {
			t.Errorf("listed %d = %v, want %v", i, listed[i], sum.GetRejections()[i])
		}
	}
	_, err = env.client.GetImport(ctx, &sendingv1.GetImportRequest{ImportId: "no-such-import"})
	wantCode(t, err, codes.NotFound)
}

func TestImportResendIsNoOp(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	ctx := context.Background()
	var rows []*sendingv1.WorkerRow
	for i := range 12000 {
		r := genRow(i)
		if i%1000 == 5 {
			r.Phone = "123"
		}
		rows = append(rows, r)
	}
	first, err := importRows(ctx, env.client, "roster-2026-03", rows, 2000)
	if err != nil {
		t.Fatal(err)
	}
	if first.GetSummary().GetCreated() != 11988 || first.GetSummary().GetRejected() != 12 {
		t.Fatalf("first import: %v", first.GetSummary())
	}
	before, _ := rosterSnapshot(t, env.db)

	// The same import again, whole or as a final message alone: the stored summary, nothing
	// changed. Its first 10 rows alone, as a whole import, are another import: refused.
	for _, n := range []int{len(rows), 0} {
		again, err := importRows(ctx, env.client, "roster-2026-03", rows[:n], 2000)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(again, first) {
			t.Fatalf("re-sent import (%d rows) replied %v, want the first reply %v", n, again.GetSummary(), first.GetSummary())
		}
	}
	_, err = importRows(ctx, env.client, "roster-2026-03", rows[:10], 2000)
	fieldViolation(t, err, "import_id")
	after, _ := rosterSnapshot(t, env.db)
	if len(after) != len(before) {
		t.Fatalf("re-send changed the roster size: %d -> %d", len(before), len(after))
	}
	for id, w := range before {
		if !proto.Equal(w, after[id]) {
			t.Fatalf("re-send changed a worker:\n%v\n%v", w, after[id])
		}
	}

	// The same rows under a new import id: every good row is unchanged.
	other, err := importRows(ctx, env.client, "roster-2026-03-again", rows, 5000)
	if err != nil {
		t.Fatal(err)
	}
	if s := other.GetSummary(); s.GetUnchanged() != 11988 || s.GetCreated() != 0 || s.GetUpdated() != 0 || s.GetRejected() != 12 {
		t.Fatalf("same rows, new import id: %v", s)
	}
	after, _ = rosterSnapshot(t, env.db)
	for id, w := range before {
		if !proto.Equal(w, after[id]) {
			t.Fatalf("unchanged rows changed a worker:\n%v\n%v", w, after[id])
		}
	}
}

func TestImportUpdatesKnownWorkers(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	ctx := context.Background()
	rows := []*sendingv1.WorkerRow{genRow(0), genRow(1), genRow(2), genRow(3)}
	if _, err := importRows(ctx, env.client, "a", rows, 10); err != nil {
		t.Fatal(err)
	}
	before, _ := rosterSnapshot(t, env.db)

	changed := []*sendingv1.WorkerRow{genRow(0), genRow(1), genRow(2), genRow(3), genRow(4)}
	changed[0].Phone = "138 0013 8000"                      // a real change (spaces are dropped)
	changed[1].Occupations = "  "                           // occupations cleared
	changed[2].IdNumber = strings.ToLower(rows[2].IdNumber) // same person, lower-case x or not
	changed[3].PreferredDestinations = strings.ReplaceAll(rows[3].PreferredDestinations, ";", "，")
	resp, err := importRows(ctx, env.client, "b", changed, 10)
	if err != nil {
		t.Fatal(err)
	}
	s := resp.GetSummary()
	if s.GetCreated() != 1 || s.GetUpdated() != 2 || s.GetUnchanged() != 2 || s.GetRejected() != 0 {
		t.Fatalf("summary %v; want 1 created, 2 updated, 2 unchanged", s)
	}
	after, _ := rosterSnapshot(t, env.db)
	w0 := after[rows[0].IdNumber]
	if w0.GetPhone() != "13800138000" || w0.GetWorkerId() != before[rows[0].IdNumber].GetWorkerId() {
		t.Errorf("updated worker = %v", w0)
	}
	if !w0.GetUpdateTime().AsTime().After(before[rows[0].IdNumber].GetUpdateTime().AsTime()) &&
		!w0.GetUpdateTime().AsTime().Equal(before[rows[0].IdNumber].GetUpdateTime().AsTime()) {
		t.Errorf("update time went back")
	}
	if len(after[rows[1].IdNumber].GetOccupations()) != 0 {
		t.Errorf("occupations not cleared: %v", after[rows[1].IdNumber].GetOccupations())
	}
	for _, i := range []int{2, 3} {
		if !proto.Equal(after[rows[i].IdNumber], before[rows[i].IdNumber]) {
			t.Errorf("unchanged row %d changed the worker", i)
		}
	}
}

// Two rows of one import with the same identity number: the later row wins, counted like a row
// of a later import.
func TestImportSameIdentityTwiceLaterRowWins(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	a, b, c := genRow(0), genRow(1), genRow(2)
	b.IdNumber = a.IdNumber
	c.IdNumber = a.IdNumber
	c.Phone = b.Phone
	c.FullName = b.FullName
	c.HomeCounty = b.HomeCounty
	c.RegisteredPoor = b.RegisteredPoor
	c.Occupations = b.Occupations
	c.Education = b.Education
	c.PreferredDestinations = b.PreferredDestinations
	resp, err := importRows(context.Background(), env.client, "dup", []*sendingv1.WorkerRow{a, b, c}, 10)
	if err != nil {
		t.Fatal(err)
	}
	s := resp.GetSummary()
	if s.GetCreated() != 1 || s.GetUpdated() != 1 || s.GetUnchanged() != 1 {
		t.Fatalf("summary %v; want created 1, updated 1, unchanged 1", s)
	}
	roster, indexN := rosterSnapshot(t, env.db)
	if len(roster) != 1 || indexN != 1 || roster[a.IdNumber].GetPhone() != b.Phone {
		t.Fatalf("roster = %v; want one worker with the later row's phone", roster)
	}
}

// A client cuts the stream after some chunks (some batches committed), then sends the whole import
// again: the roster and the summary are exactly those of an import that was never cut.
func TestImportCutStreamThenResend(t *testing.T) {
	t.Parallel()
	var rows []*sendingv1.WorkerRow
	for i := range 23000 {
		r := genRow(i)
		if i%997 == 0 {
			r.HomeCounty = "440103"
		}
		if i%5000 == 4999 {
			r.IdNumber = rows[i-1].IdNumber // a repeat across a batch boundary: later row wins
		}
		rows = append(rows, r)
	}
	ctx := context.Background()

	// Reference: the same rows in one go.
	ref := startRoster(t, nil, "")
	want, err := importRows(ctx, ref.client, "cut", rows, 1000)
	if err != nil {
		t.Fatal(err)
	}
	wantRoster, _ := rosterSnapshot(t, ref.db)

	env := startRoster(t, nil, "")
	committed := func() (int64, bool) {
		gi, err := env.client.GetImport(ctx, &sendingv1.GetImportRequest{ImportId: "cut"})
		if err != nil {
			return 0, false
		}
		return gi.GetSummary().GetRowsReceived(), gi.GetComplete()
	}
	for _, cutAfter := range []int{7, 16} { // chunks of 1000 rows sent before the cut
		before, _ := committed()
		cctx, cancel := context.WithCancel(ctx)
		stream, err := env.client.ImportWorkers(cctx)
		if err != nil {
			t.Fatal(err)
		}
		for c := range cutAfter {
			if err := stream.Send(&sendingv1.ImportWorkersRequest{ImportId: "cut", Rows: rows[c*1000 : (c+1)*1000]}); err != nil {
				t.Fatal(err)
			}
		}
		// Wait until a batch of this stream is committed (more than 5000 rows are new), then cut.
		for {
			n, complete := committed()
			if complete {
				t.Fatal("a cut import is complete")
			}
			if n > before {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		// Cut by a cancel, as a client that dies or is interrupted does (a half-close without
		// the final message would leave the import incomplete too).
		cancel()
		if err := stream.RecvMsg(&sendingv1.ImportWorkersResponse{}); err == nil {
			t.Fatal("cut stream got a reply")
		}
	}
	if n, complete := committed(); complete || n == 0 || n >= int64(len(rows)) {
		t.Fatalf("after the cuts: %d rows, complete %v; want some committed rows of an incomplete import", n, complete)
	}

	got, err := importRows(ctx, env.client, "cut", rows, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("resumed import replied %v\nwant %v", got.GetSummary(), want.GetSummary())
	}
	gotRoster, indexN := rosterSnapshot(t, env.db)
	if len(gotRoster) != len(wantRoster) || indexN != len(wantRoster) {
		t.Fatalf("roster has %d workers (%d index entries), want %d", len(gotRoster), indexN, len(wantRoster))
	}
	for id, w := range wantRoster {
		g := gotRoster[id]
		if g == nil || !sameImportedFields(g, w) || g.GetSex() != w.GetSex() || !proto.Equal(g.GetBirthDate(), w.GetBirthDate()) {
			t.Fatalf("worker differs after resume:\n%v\nwant %v", g, w)
		}
	}
}

func TestImportProtocolErrors(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	ctx := context.Background()
	r1, r2 := genRow(0), genRow(1)
	tests := []struct {
		name  string
		msgs  []*sendingv1.ImportWorkersRequest
		field string
	}{
		{"no import id", []*sendingv1.ImportWorkersRequest{{Rows: []*sendingv1.WorkerRow{r1}}}, "import_id"},
		{"import id with a control character", []*sendingv1.ImportWorkersRequest{{ImportId: "a\x00b"}}, "import_id"},
		{"import id too long", []*sendingv1.ImportWorkersRequest{{ImportId: strings.Repeat("名", store.MaxClientIDLen+1)}}, "import_id"},
		{"import id with a slash", []*sendingv1.ImportWorkersRequest{{ImportId: "2026/春季名单.xlsx"}}, "import_id"},
		{"import id changes", []*sendingv1.ImportWorkersRequest{{ImportId: "p1", Rows: []*sendingv1.WorkerRow{r1}}, {ImportId: "p2", Rows: []*sendingv1.WorkerRow{r2}}}, "import_id"},
		{"row numbers go back", []*sendingv1.ImportWorkersRequest{{ImportId: "p3", Rows: []*sendingv1.WorkerRow{r2, r1}}}, "rows[1].row_number"},
		{"row number zero", []*sendingv1.ImportWorkersRequest{{ImportId: "p4", Rows: []*sendingv1.WorkerRow{{RowNumber: 0}}}}, "rows[0].row_number"},
		{"chunk too big", []*sendingv1.ImportWorkersRequest{{ImportId: "p5", Rows: make([]*sendingv1.WorkerRow, maxChunkRows+1)}}, "rows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream, err := env.client.ImportWorkers(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range tt.msgs {
				if err := stream.Send(m); err != nil {
					break
				}
			}
			_, err = stream.CloseAndRecv()
			st := wantCode(t, err, codes.InvalidArgument)
			found := false
			for _, d := range st.Details() {
				if br, ok := d.(*errdetails.BadRequest); ok {
					for _, fv := range br.GetFieldViolations() {
						found = found || fv.GetField() == tt.field
					}
				}
			}
			if !found {
				t.Errorf("no field violation for %s in %v", tt.field, st.Details())
			}
		})
	}
}

// No identity number or phone reaches a log line, whatever the rows, the outcome or the RPC.
func TestImportLogsNoPersonalData(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.DebugLevel)
	env := startRoster(t, zap.New(core), "")
	ctx := context.Background()

	var rows []*sendingv1.WorkerRow
	var secrets []string
	for i := range 300 {
		r := genRow(i)
		switch i % 5 {
		case 1:
			r.IdNumber = r.IdNumber[:17] + "Z" // invalid check character
		case 2:
			r.Phone = r.Phone[:10] // invalid phone
		case 3:
			r.IdNumber = makeIDNumber(r.HomeCounty, time.Now().AddDate(-10, 0, 0), i) // too young
		case 4:
			r.Sex = oppositeSex(r)
		}
		rows = append(rows, r)
		secrets = append(secrets, r.IdNumber, r.IdNumber[:17], r.Phone)
	}
	resp, err := importRows(ctx, env.client, "pii", rows, 50)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetSummary().GetRejected() != 240 {
		t.Fatalf("summary %v", resp.GetSummary())
	}
	// Other RPCs that touch personal data, and failing ones.
	roster, _ := rosterSnapshot(t, env.db)
	w := roster[rows[0].IdNumber]
	if _, err := env.client.GetWorker(ctx, &sendingv1.GetWorkerRequest{Name: w.GetName(), View: sendingv1.WorkerView_WORKER_VIEW_FULL}); err != nil {
		t.Fatal(err)
	}
	_, err = env.client.UpdateWorker(ctx, &sendingv1.UpdateWorkerRequest{
		Worker:     &sendingv1.Worker{Name: w.GetName(), Phone: "13912345678"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"phone"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = env.client.UpdateWorker(ctx, &sendingv1.UpdateWorkerRequest{
		Worker:     &sendingv1.Worker{Name: w.GetName(), Phone: "13912345", IdNumber: rows[1].IdNumber},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"phone", "id_number"}},
	})
	wantCode(t, err, codes.InvalidArgument)
	secrets = append(secrets, "13912345678", "13912345")
	if _, err := importRows(ctx, env.client, "pii", rows, 50); err != nil { // complete: stored reply
		t.Fatal(err)
	}

	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	if logs.Len() == 0 {
		t.Fatal("no log lines captured")
	}
	for _, e := range logs.All() {
		buf, err := enc.EncodeEntry(e.Entry, e.Context)
		if err != nil {
			t.Fatal(err)
		}
		line := buf.String()
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Fatalf("log line has personal data %q: %s", s[:4]+"…", line)
			}
		}
	}
}

func TestImportRowReasonsHaveNoPersonalData(t *testing.T) {
	t.Parallel()
	ck := checker{regions: regions.Default(), province: rosterRegion}
	today := civil.Today(time.Now())
	for i, b := range badRows() {
		r := genRow(i)
		b.spoil(r)
		res := ck.validateRow(r, today)
		if res.worker != nil || len(res.rejections) != len(b.fields) {
			t.Fatalf("%s: %v", b.name, res.rejections)
		}
		for _, rj := range res.rejections {
			if (len(r.IdNumber) >= 6 && strings.Contains(rj.GetReason(), r.IdNumber)) || strings.Contains(rj.GetReason(), r.Phone) {
				t.Errorf("%s: reason %q repeats personal data", b.name, rj.GetReason())
			}
		}
	}
}

func TestImportRecordRoundTrip(t *testing.T) {
	t.Parallel()
	r := importRecord{
		summary:    &commonv1.ImportSummary{ImportId: "x", RowsReceived: 9, Created: 5, Updated: 1, Unchanged: 1, Rejected: 2},
		complete:   true,
		lastRow:    11,
		importDate: &commonv1.Date{Year: 2026, Month: 3, Day: 1},
		entries:    3,
		updateTime: time.Date(2026, 3, 1, 2, 3, 4, 0, time.UTC),
	}
	b, err := r.marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := unmarshalImportRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got.summary, r.summary) || got.complete != r.complete || got.lastRow != r.lastRow ||
		!proto.Equal(got.importDate, r.importDate) || got.entries != r.entries || !got.updateTime.Equal(r.updateTime) {
		t.Fatalf("round trip: %+v, want %+v", got, r)
	}
	if _, err := unmarshalImportRecord([]byte{0x0a, 0xff}); err == nil {
		t.Error("corrupt record decoded")
	}
}

// A new worker's id is drawn before the transaction; if it were taken (80 random bits: next to
// impossible), another is drawn and no worker is overwritten.
func TestImportNeverOverwritesOnWorkerIDClash(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	name := importOne(t, env, 0)
	before, _ := rosterSnapshot(t, env.db)

	ck := env.svc.checker()
	res := ck.validateRow(genRow(1), civil.Today(time.Now()))
	if err := env.svc.prepareCreate(&res, timestamppb.Now()); err != nil {
		t.Fatal(err)
	}
	res.createdID = strings.TrimPrefix(name, "workers/") // force the clash
	if _, err := env.svc.commitBatch("clash", civil.Today(time.Now()), importBatch{rows: []rowResult{res}, final: true}); err != nil {
		t.Fatal(err)
	}
	after, indexN := rosterSnapshot(t, env.db)
	if len(after) != 2 || indexN != 2 {
		t.Fatalf("%d workers, %d index entries; want 2", len(after), indexN)
	}
	first := before[genRow(0).IdNumber]
	if !proto.Equal(after[genRow(0).IdNumber], first) {
		t.Fatal("the existing worker was overwritten")
	}
	if w := after[genRow(1).IdNumber]; w.GetWorkerId() == first.GetWorkerId() || !ValidWorkerID(w.GetWorkerId()) {
		t.Fatalf("new worker got id %q", w.GetWorkerId())
	}
}

// When the server begins its graceful stop, an import stream ends after the message in hand with
// UNAVAILABLE, keeping what it received; sending the import again finishes it. A stream that is
// waiting for its client (idle) ends at once, without another message.
func TestImportEndsWhenServerDrains(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	draining := make(chan struct{})
	env.svc.cfg.Draining = draining
	inHand := make(chan string, 10)
	env.svc.importHook = func(id, event string) {
		if event == importMessage {
			inHand <- id
		}
	}
	var rows []*sendingv1.WorkerRow
	for i := range 3000 {
		rows = append(rows, genRow(i))
	}
	ctx := context.Background()
	stream, err := env.client.ImportWorkers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&sendingv1.ImportWorkersRequest{ImportId: "drain", Rows: rows[:1000]}); err != nil {
		t.Fatal(err)
	}
	<-inHand // the first 1000 rows are in hand; the stream now waits for its client
	close(draining)
	// RecvMsg, not CloseAndRecv: the client does not half-close, the server ends the stream.
	wantCode(t, stream.RecvMsg(&sendingv1.ImportWorkersResponse{}), codes.Unavailable)
	gi, err := env.client.GetImport(ctx, &sendingv1.GetImportRequest{ImportId: "drain"})
	if err != nil {
		t.Fatal(err)
	}
	if gi.GetComplete() || gi.GetSummary().GetCreated() != 1000 || gi.GetLastRowNumber() != rows[999].GetRowNumber() {
		t.Fatalf("after the drain: %v; want the first 1000 rows kept", gi)
	}
	// A stream opened while draining ends before its first message is read.
	_, err = importRows(ctx, env.client, "drain", rows, 1000)
	wantCode(t, err, codes.Unavailable)

	env.svc.cfg.Draining = nil // a restarted server
	resp, err := importRows(ctx, env.client, "drain", rows, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if s := resp.GetSummary(); s.GetCreated() != 3000 || s.GetRowsReceived() != 3000 {
		t.Fatalf("finished import: %v", s)
	}
}
