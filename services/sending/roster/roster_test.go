package roster

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"pgregory.net/rapid"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
)

// importGenerated imports generated rows [from, to) under importID and fails the test on error.
func importGenerated(t testing.TB, env *rosterEnv, importID string, from, to int) {
	t.Helper()
	rows := make([]*sendingv1.WorkerRow, 0, to-from)
	for i := from; i < to; i++ {
		rows = append(rows, genRow(i))
	}
	if _, err := importRows(context.Background(), env.client, importID, rows, 1000); err != nil {
		t.Error(err)
	}
}

func isMaskedID(masked, full string) bool {
	return len(masked) == 18 && masked[:4] == full[:4] && masked[14:] == full[14:] && masked[4:14] == strings.Repeat("*", 10)
}

func isMaskedPhone(masked, full string) bool {
	return masked == full[:3]+"****"+full[7:]
}

func TestGetWorkerMasksPersonalData(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	ctx := context.Background()
	row := genRow(0)
	name := importOne(t, env, 0)

	for _, view := range []sendingv1.WorkerView{sendingv1.WorkerView_WORKER_VIEW_UNSPECIFIED, sendingv1.WorkerView_WORKER_VIEW_BASIC} {
		resp, err := env.client.GetWorker(ctx, &sendingv1.GetWorkerRequest{Name: name, View: view})
		if err != nil {
			t.Fatal(err)
		}
		w := resp.GetWorker()
		if !isMaskedID(w.GetIdNumber(), row.IdNumber) || !isMaskedPhone(w.GetPhone(), row.Phone) {
			t.Errorf("view %s: id %q phone %q, want masked", view, w.GetIdNumber(), w.GetPhone())
		}
		if w.GetName() != name || w.GetFullName() != row.FullName || w.GetBirthDate() == nil || w.GetSex() == commonv1.Sex_SEX_UNSPECIFIED {
			t.Errorf("view %s: %v", view, w)
		}
	}
	full, err := env.client.GetWorker(ctx, &sendingv1.GetWorkerRequest{Name: name, View: sendingv1.WorkerView_WORKER_VIEW_FULL})
	if err != nil {
		t.Fatal(err)
	}
	if full.GetWorker().GetIdNumber() != row.IdNumber || full.GetWorker().GetPhone() != row.Phone {
		t.Errorf("full view: %v", full.GetWorker())
	}
	list, err := env.client.ListWorkers(ctx, &sendingv1.ListWorkersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetWorkers()) != 1 || !isMaskedID(list.GetWorkers()[0].GetIdNumber(), row.IdNumber) || !isMaskedPhone(list.GetWorkers()[0].GetPhone(), row.Phone) {
		t.Errorf("list: %v", list.GetWorkers())
	}

	for _, bad := range []string{"", "520000-AAAAAAAAAAAAAAAA", "workers/" + row.IdNumber, "workers/520000-aaaaaaaaaaaaaaaa"} {
		_, err := env.client.GetWorker(ctx, &sendingv1.GetWorkerRequest{Name: bad})
		wantCode(t, err, codes.InvalidArgument)
	}
	_, err = env.client.GetWorker(ctx, &sendingv1.GetWorkerRequest{Name: "workers/520000-AAAAAAAAAAAAAAAA"})
	wantCode(t, err, codes.NotFound)
}

func TestMaskPhone(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"13800138000": "138****8000", "": "", "1234567": "*******", "12345678": "123*5678"} {
		if got := maskPhone(in); got != want {
			t.Errorf("maskPhone(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestListWorkersFilters(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	ctx := context.Background()
	importGenerated(t, env, "f", 0, 400)
	roster, _ := rosterSnapshot(t, env.db)
	// Move some workers along so that the status filter has something to find.
	n := 0
	for _, w := range roster {
		if n == 30 {
			break
		}
		if _, err := env.client.ChangeWorkerStatus(ctx, &sendingv1.ChangeWorkerStatusRequest{Name: w.GetName(), Status: stProposed}); err != nil {
			t.Fatal(err)
		}
		w.Status = stProposed
		n++
	}
	yes, no := true, false
	tests := []*sendingv1.ListWorkersRequest{
		{},
		{Status: stProposed},
		{Status: stAvailable},
		{HomeCounty: testCounties[3]},
		{Occupation: "8212"},
		{RegisteredPoor: &yes},
		{RegisteredPoor: &no, Occupation: "9313", Status: stAvailable},
		{HomeCounty: testCounties[1], Status: stProposed},
	}
	for _, req := range tests {
		t.Run(fmt.Sprint(req), func(t *testing.T) {
			var want []string
			for _, w := range roster {
				if (req.GetStatus() == 0 || w.GetStatus() == req.GetStatus()) && matchesList(w, req) {
					want = append(want, w.GetWorkerId())
				}
			}
			slices.Sort(want)
			got := listAll(t, env, req, 37)
			if !slices.Equal(got, want) {
				t.Fatalf("listed %d workers, want %d", len(got), len(want))
			}
		})
	}

	// A token is bound to its filters; garbage is refused.
	first, err := env.client.ListWorkers(ctx, &sendingv1.ListWorkersRequest{PageSize: 5, Occupation: "8212"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = env.client.ListWorkers(ctx, &sendingv1.ListWorkersRequest{PageSize: 5, Occupation: "9313", PageToken: first.GetNextPageToken()})
	wantCode(t, err, codes.InvalidArgument)
	_, err = env.client.ListWorkers(ctx, &sendingv1.ListWorkersRequest{PageToken: "garbage"})
	wantCode(t, err, codes.InvalidArgument)
	for _, bad := range []*sendingv1.ListWorkersRequest{{HomeCounty: "440103"}, {Occupation: "GENERAL"}, {Status: 77}, {PageSize: -1}} {
		_, err = env.client.ListWorkers(ctx, bad)
		wantCode(t, err, codes.InvalidArgument)
	}
}

// listAll pages through ListWorkers and returns the worker ids, failing on a repeat or an
// out-of-order id.
func listAll(t testing.TB, env *rosterEnv, req *sendingv1.ListWorkersRequest, pageSize int32) []string {
	t.Helper()
	req = proto.Clone(req).(*sendingv1.ListWorkersRequest)
	req.PageSize = pageSize
	var ids []string
	for {
		resp, err := env.client.ListWorkers(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetWorkers()) > int(pageSize) {
			t.Fatalf("page of %d workers, asked for %d", len(resp.GetWorkers()), pageSize)
		}
		for _, w := range resp.GetWorkers() {
			if n := len(ids); n > 0 && ids[n-1] >= w.GetWorkerId() {
				t.Fatalf("worker %s listed after %s: repeated or out of order", w.GetWorkerId(), ids[n-1])
			}
			ids = append(ids, w.GetWorkerId())
		}
		if resp.GetNextPageToken() == "" {
			return ids
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// Paging while imports add workers: no worker is listed twice, and every worker that existed
// before the listing began is listed. Imports run in the background and, to be sure they land
// between pages, one more runs after each of the first pages.
func TestListWorkersPaginationWithConcurrentImports(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	importGenerated(t, env, "base", 0, 3000)
	before, _ := rosterSnapshot(t, env.db)

	var wg sync.WaitGroup
	for k := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from := 100_000 + k*3000
			importGenerated(t, env, fmt.Sprintf("concurrent-%d", k), from, from+3000)
		}()
	}
	req := &sendingv1.ListWorkersRequest{PageSize: 40}
	var listed []string
	next := 200_000
	for page := 0; ; page++ {
		resp, err := env.client.ListWorkers(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range resp.GetWorkers() {
			if n := len(listed); n > 0 && listed[n-1] >= w.GetWorkerId() {
				t.Fatalf("worker %s listed after %s: repeated or out of order", w.GetWorkerId(), listed[n-1])
			}
			listed = append(listed, w.GetWorkerId())
		}
		if resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
		if page < 50 {
			importGenerated(t, env, fmt.Sprintf("between-%d", page), next, next+30)
			next += 30
		}
	}
	wg.Wait()

	seen := map[string]bool{}
	for _, id := range listed {
		seen[id] = true
	}
	for _, w := range before {
		if !seen[w.GetWorkerId()] {
			t.Fatalf("worker %s existed before the listing and was skipped", w.GetWorkerId())
		}
	}
	after, _ := rosterSnapshot(t, env.db)
	if want := 3000 + 9000 + (next - 200_000); len(after) != want {
		t.Fatalf("roster has %d workers after the imports, want %d", len(after), want)
	}
	if len(listed) == len(before) {
		t.Error("no worker added during the listing was listed: the test did not interleave")
	}
	t.Logf("listed %d of %d workers (%d existed before)", len(listed), len(after), len(before))
}

func TestListWorkersScanBudget(t *testing.T) {
	t.Parallel()
	// A filter that matches nothing still ends: pages may be empty but carry a token, until the
	// end of the roster.
	env := startRoster(t, nil, "")
	importGenerated(t, env, "b", 0, 50)
	got := listAll(t, env, &sendingv1.ListWorkersRequest{Status: stEmployed}, 10)
	if len(got) != 0 {
		t.Fatalf("listed %d employed workers", len(got))
	}
}

func violationFields(t *testing.T, err error) []string {
	t.Helper()
	st := wantCode(t, err, codes.InvalidArgument)
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				fields = append(fields, fv.GetField())
			}
		}
	}
	return fields
}

func TestUpdateWorker(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	ctx := context.Background()
	row := genRow(0)
	name := importOne(t, env, 0)
	update := func(w *sendingv1.Worker, requestID string, paths ...string) (*sendingv1.Worker, error) {
		w.Name = name
		resp, err := env.client.UpdateWorker(ctx, &sendingv1.UpdateWorkerRequest{Worker: w, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}, RequestId: requestID})
		return resp.GetWorker(), err
	}
	stored := func() *sendingv1.Worker {
		resp, err := env.client.GetWorker(ctx, &sendingv1.GetWorkerRequest{Name: name, View: sendingv1.WorkerView_WORKER_VIEW_FULL})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetWorker()
	}
	orig := stored()

	// Only the masked fields change; values are normalised; the reply is masked.
	w, err := update(&sendingv1.Worker{Phone: "+86 137-0000-1111", Occupations: []string{"9333", "8212", "9333"}, FullName: "ignored"}, "", "phone", "occupations")
	if err != nil {
		t.Fatal(err)
	}
	if w.GetPhone() != "137****1111" || !slices.Equal(w.GetOccupations(), []string{"8212", "9333"}) || w.GetFullName() != row.FullName {
		t.Errorf("updated worker: %v", w)
	}
	got := stored()
	if got.GetPhone() != "13700001111" || got.GetIdNumber() != row.IdNumber || !got.GetUpdateTime().AsTime().After(orig.GetUpdateTime().AsTime()) && !got.GetUpdateTime().AsTime().Equal(orig.GetUpdateTime().AsTime()) {
		t.Errorf("stored after update: %v", got)
	}

	// Bad values, immutable and unknown fields: INVALID_ARGUMENT naming each, nothing changed.
	tests := []struct {
		name   string
		w      *sendingv1.Worker
		paths  []string
		fields []string
	}{
		{"identity number", &sendingv1.Worker{IdNumber: "520102199001011234"}, []string{"id_number"}, []string{"update_mask"}},
		{"status", &sendingv1.Worker{Status: stWithdrawn}, []string{"status"}, []string{"update_mask"}},
		{"unknown path", &sendingv1.Worker{}, []string{"create_time"}, []string{"update_mask"}},
		{"no mask", &sendingv1.Worker{Phone: "13700001111"}, nil, []string{"update_mask"}},
		{"bad phone and county", &sendingv1.Worker{Phone: "12345", HomeCounty: "440103"}, []string{"phone", "home_county"}, []string{"worker.phone", "worker.home_county"}},
		{"empty name", &sendingv1.Worker{}, []string{"full_name"}, []string{"worker.full_name"}},
		{"general occupation", &sendingv1.Worker{Occupations: []string{"GENERAL"}}, []string{"occupations"}, []string{"worker.occupations"}},
		{"bad destination", &sendingv1.Worker{PreferredDestinations: []string{"520000"}}, []string{"preferred_destinations"}, []string{"worker.preferred_destinations"}},
		{"bad date", &sendingv1.Worker{AvailableFrom: &commonv1.Date{Year: 2026, Month: 2, Day: 30}}, []string{"available_from"}, []string{"worker.available_from"}},
		{"bad education", &sendingv1.Worker{Education: 42}, []string{"education"}, []string{"worker.education"}},
		{"health date kept without a passed check", &sendingv1.Worker{HealthCheckPassed: false}, []string{"health_check_passed"}, []string{"worker.health_check_date"}},
		{"passed check without date", &sendingv1.Worker{HealthCheckPassed: true}, []string{"health_check_date"}, []string{"worker.health_check_date"}},
	}
	before := stored()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := update(tt.w, "", tt.paths...)
			if got := violationFields(t, err); !slices.Equal(got, tt.fields) {
				t.Errorf("violations on %v, want %v", got, tt.fields)
			}
		})
	}
	if after := stored(); !proto.Equal(after, before) {
		t.Fatalf("refused updates changed the worker:\n%v\n%v", before, after)
	}

	// Clearing the health check: both fields together.
	if _, err := update(&sendingv1.Worker{}, "", "health_check_passed", "health_check_date"); err != nil {
		t.Fatal(err)
	}
	// Same values again: no change, same update time.
	t1 := stored().GetUpdateTime()
	if _, err := update(&sendingv1.Worker{HealthCheckPassed: false}, "", "health_check_passed"); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(stored().GetUpdateTime(), t1) {
		t.Error("an update that changes nothing moved update_time")
	}

	// A repeated request id returns the first reply.
	r1, err := update(&sendingv1.Worker{FullName: "新名字"}, "u-1", "full_name")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := update(&sendingv1.Worker{FullName: "新名字"}, "u-1", "full_name")
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(r1, r2) || stored().GetFullName() != "新名字" {
		t.Errorf("repeat of u-1 = %v (stored %q), want the first reply", r2, stored().GetFullName())
	}
	// The same request id with another request is refused and changes nothing.
	if _, err := update(&sendingv1.Worker{FullName: "别的名字"}, "u-1", "full_name"); status.Code(err) != codes.InvalidArgument {
		t.Errorf("u-1 reused for another request: %v, want INVALID_ARGUMENT", err)
	}
	if stored().GetFullName() != "新名字" {
		t.Errorf("a refused reuse of u-1 changed the name to %q", stored().GetFullName())
	}

	_, err = env.client.UpdateWorker(ctx, &sendingv1.UpdateWorkerRequest{
		Worker:     &sendingv1.Worker{Name: "workers/520000-AAAAAAAAAAAAAAAA", FullName: "x"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"full_name"}},
	})
	wantCode(t, err, codes.NotFound)
}

func TestDeleteWorkerErasesPersonalData(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	ctx := context.Background()
	row := genRow(0)
	name := importOne(t, env, 0)
	importOne(t, env, 1)
	if _, err := env.client.ChangeWorkerStatus(ctx, &sendingv1.ChangeWorkerStatusRequest{Name: name, Status: stProposed}); err != nil {
		t.Fatal(err)
	}

	resp, err := env.client.DeleteWorker(ctx, &sendingv1.DeleteWorkerRequest{Name: name, RequestId: "d-1"})
	if err != nil {
		t.Fatal(err)
	}
	tomb := resp.GetWorker()
	if !tomb.GetErased() || tomb.GetStatus() != stProposed || tomb.GetName() != name ||
		tomb.GetIdNumber() != "" || tomb.GetFullName() != "" || tomb.GetPhone() != "" || tomb.GetHomeCounty() != "" || tomb.GetBirthDate() != nil {
		t.Fatalf("tombstone = %v", tomb)
	}
	full, err := env.client.GetWorker(ctx, &sendingv1.GetWorkerRequest{Name: name, View: sendingv1.WorkerView_WORKER_VIEW_FULL})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(full.GetWorker(), tomb) {
		t.Errorf("GetWorker of an erased worker = %v, want the tombstone %v", full.GetWorker(), tomb)
	}
	// Nothing of the person is left in the worker record or the index.
	err = env.db.View(func(tx *bbolt.Tx) error {
		id := strings.TrimPrefix(name, "workers/")
		v := tx.Bucket(BucketWorkers).Get([]byte(id))
		if bytes.Contains(v, []byte(row.IdNumber)) || bytes.Contains(v, []byte(row.Phone)) || bytes.Contains(v, []byte(row.FullName)) {
			t.Error("worker record still holds personal data")
		}
		if wid, err := WorkerIDByIDNumber(tx, row.IdNumber); err != nil || wid != "" {
			t.Error("identity index entry kept")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Listing skips erased workers; deleting again returns the tombstone; updating is refused.
	list, err := env.client.ListWorkers(ctx, &sendingv1.ListWorkersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetWorkers()) != 1 || list.GetWorkers()[0].GetName() == name {
		t.Errorf("list after delete: %v", list.GetWorkers())
	}
	again, err := env.client.DeleteWorker(ctx, &sendingv1.DeleteWorkerRequest{Name: name})
	if err != nil || !again.GetWorker().GetErased() {
		t.Errorf("second delete: %v, %v", again, err)
	}
	_, err = env.client.UpdateWorker(ctx, &sendingv1.UpdateWorkerRequest{
		Worker: &sendingv1.Worker{Name: name, FullName: "x"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"full_name"}},
	})
	wantCode(t, err, codes.FailedPrecondition)

	// The same person imported again is a new worker with a new id.
	if _, err := importRows(ctx, env.client, "again", []*sendingv1.WorkerRow{row}, 1); err != nil {
		t.Fatal(err)
	}
	roster, _ := rosterSnapshot(t, env.db)
	if w := roster[row.IdNumber]; w == nil || w.GetName() == name || w.GetStatus() != stAvailable {
		t.Errorf("re-imported worker = %v", w)
	}
	_, err = env.client.DeleteWorker(ctx, &sendingv1.DeleteWorkerRequest{Name: "workers/520000-AAAAAAAAAAAAAAAA"})
	wantCode(t, err, codes.NotFound)
}

func TestNewWorkerIDIsOpaque(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	now := time.Now()
	for range 1000 {
		id, err := newWorkerID(rosterRegion, now)
		if err != nil {
			t.Fatal(err)
		}
		if !ValidWorkerID(id) || !strings.HasPrefix(id, rosterRegion+"-") || seen[id] {
			t.Fatalf("bad or repeated worker id %q", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "520000", "520000-AAAAAAAAAAAAAAA", "520000-AAAAAAAAAAAAAAA1", "52000A-AAAAAAAAAAAAAAAA", "520000_AAAAAAAAAAAAAAAA"} {
		if ValidWorkerID(bad) {
			t.Errorf("ValidWorkerID(%q) = true", bad)
		}
	}
}

// Worker ids sort in the order the workers were created (so that an import's new workers go
// to the end of the roster's buckets), and the encoding keeps the order of any 80 bits.
func TestWorkerIDsSortInCreationOrder(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(rt *rapid.T) {
		a := rapid.SliceOfN(rapid.Byte(), 10, 10).Draw(rt, "a")
		b := rapid.SliceOfN(rapid.Byte(), 10, 10).Draw(rt, "b")
		if got, want := strings.Compare(workerIDEncoding.EncodeToString(a), workerIDEncoding.EncodeToString(b)), bytes.Compare(a, b); got != want {
			rt.Fatalf("encodings of %x and %x compare %d, the bytes %d", a, b, got, want)
		}
	})
	start := time.Date(2027, 3, 1, 8, 0, 0, 0, time.UTC)
	var prev string
	for i := range 2000 {
		at := start.Add(time.Duration(i) * time.Millisecond)
		id, err := newWorkerID(rosterRegion, at)
		if err != nil {
			t.Fatal(err)
		}
		if !ValidWorkerID(id) {
			t.Fatalf("worker id %q is not valid", id)
		}
		if id <= prev {
			t.Fatalf("worker id %q created at %v sorts before %q created a millisecond earlier", id, at, prev)
		}
		prev = id
	}
	// The time is in the id, the rest is random: two ids of the same millisecond share the
	// time's characters and differ after it.
	x, _ := newWorkerID(rosterRegion, start)
	y, _ := newWorkerID(rosterRegion, start)
	if x[:7+9] != y[:7+9] || x == y {
		t.Errorf("ids of the same millisecond %q and %q: want the same first 9 characters after the dash and different ids", x, y)
	}
}

// InPool is the rule of the index of available workers: AVAILABLE and not erased, whatever
// else the worker holds.
func TestInPool(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		w    *sendingv1.Worker
		want bool
	}{
		{&sendingv1.Worker{Status: stEmployed, Erased: true, FullName: "x", Occupations: []string{"8212"}}, false},
		{&sendingv1.Worker{Status: stAvailable, BirthDate: &commonv1.Date{Year: 1990, Month: 1, Day: 1}}, true},
		{&sendingv1.Worker{Status: stAvailable, Erased: true}, false},
		{&sendingv1.Worker{Status: stProposed}, false},
		{&sendingv1.Worker{}, false},
	} {
		if got := InPool(tt.w); got != tt.want {
			t.Errorf("InPool(%v) = %v, want %v", tt.w, got, tt.want)
		}
	}
}
