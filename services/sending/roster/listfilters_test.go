package roster

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
)

// TestListWorkersOperatorFilters: destination province (listed in the worker's preferences, or
// no preference), health check passed, available by a date; each alone and together, checked
// against the rows as imported, paging in worker-id order; the token is bound to each filter
// and bad values are refused on their field.
func TestListWorkersOperatorFilters(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	ctx := context.Background()
	var rows []*sendingv1.WorkerRow
	for i := range 60 {
		r := genRow(i)
		if i%2 == 1 {
			r.HealthCheckPassed, r.HealthCheckDate = "否", ""
		}
		r.AvailableFrom = []string{"2026-03-01", "2026-05-01", ""}[i%3]
		r.PreferredDestinations = []string{"440000", "", "330000;440000", "320000"}[i%4]
		rows = append(rows, r)
	}
	if _, err := importRows(ctx, env.client, "filters", rows, 100); err != nil {
		t.Fatal(err)
	}
	roster, _ := rosterSnapshot(t, env.db)
	yes, no := true, false
	byApril := &commonv1.Date{Year: 2026, Month: 4, Day: 1}
	tests := []struct {
		req  *sendingv1.ListWorkersRequest
		want func(i int) bool // by the row as imported
	}{
		{&sendingv1.ListWorkersRequest{DestinationProvince: "330000"}, func(i int) bool { return i%4 == 1 || i%4 == 2 }},
		{&sendingv1.ListWorkersRequest{DestinationProvince: "440000"}, func(i int) bool { return i%4 != 3 }},
		{&sendingv1.ListWorkersRequest{HealthCheckPassed: &yes}, func(i int) bool { return i%2 == 0 }},
		{&sendingv1.ListWorkersRequest{HealthCheckPassed: &no}, func(i int) bool { return i%2 == 1 }},
		{&sendingv1.ListWorkersRequest{AvailableBy: byApril}, func(i int) bool { return i%3 != 1 }},
		{&sendingv1.ListWorkersRequest{AvailableBy: &commonv1.Date{Year: 2026, Month: 5, Day: 1}}, func(i int) bool { return true }},
		{&sendingv1.ListWorkersRequest{DestinationProvince: "320000", HealthCheckPassed: &no, AvailableBy: byApril, Status: stAvailable},
			func(i int) bool { return (i%4 == 1 || i%4 == 3) && i%2 == 1 && i%3 != 1 }},
	}
	for _, tt := range tests {
		var want []string
		for i, r := range rows {
			if tt.want(i) {
				want = append(want, roster[r.IdNumber].GetWorkerId())
			}
		}
		slices.Sort(want)
		if got := listAll(t, env, tt.req, 4); len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("%v: listed %d workers, want %d", tt.req, len(got), len(want))
		}
	}

	// A token is bound to each new filter.
	for _, pair := range [][2]*sendingv1.ListWorkersRequest{
		{{DestinationProvince: "440000"}, {DestinationProvince: "330000"}},
		{{HealthCheckPassed: &yes}, {HealthCheckPassed: &no}},
		{{HealthCheckPassed: &yes}, {}},
		{{AvailableBy: byApril}, {AvailableBy: &commonv1.Date{Year: 2026, Month: 4, Day: 2}}},
		{{UpdatedAfter: timestamppb.New(time.Unix(1e9, 0))}, {UpdatedAfter: timestamppb.New(time.Unix(1e9, 1))}},
	} {
		pair[0].PageSize = 2
		first, err := env.client.ListWorkers(ctx, pair[0])
		if err != nil || first.GetNextPageToken() == "" {
			t.Fatalf("%v: %v, %v", pair[0], first, err)
		}
		pair[1].PageToken = first.GetNextPageToken()
		got := fieldViolations(t, func() error { _, err := env.client.ListWorkers(ctx, pair[1]); return err }())
		if _, ok := got["page_token"]; !ok {
			t.Errorf("token of %v with %v: violations %v, want page_token", pair[0], pair[1], got)
		}
	}
	for field, bad := range map[string]*sendingv1.ListWorkersRequest{
		"destination_province": {DestinationProvince: "440100"},
		"available_by":         {AvailableBy: &commonv1.Date{Year: 2026, Month: 2, Day: 30}},
		"updated_after":        {UpdatedAfter: &timestamppb.Timestamp{Seconds: -1e12}},
	} {
		got := fieldViolations(t, func() error { _, err := env.client.ListWorkers(ctx, bad); return err }())
		if _, ok := got[field]; !ok || len(got) != 1 {
			t.Errorf("%v: violations %v, want one on %s", bad, got, field)
		}
	}
	_, err := env.client.ListWorkers(ctx, &sendingv1.ListWorkersRequest{DestinationProvince: rosterRegion})
	wantCode(t, err, codes.InvalidArgument)
}

// TestListWorkersIncrementalSync: a copy synced up to a time lists, with updated_after, exactly
// the workers changed after it (an update, a status change, an erasure: the tombstone), in
// worker-id order over several pages; without updated_after the erased worker is left out.
func TestListWorkersIncrementalSync(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64 // the service's clock, in Unix nanoseconds
	clock.Store(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	env := startRosterWith(t, nil, "", Config{Region: rosterRegion, Now: now})
	ctx := context.Background()
	importGenerated(t, env, "sync", 0, 50)
	roster, _ := rosterSnapshot(t, env.db)
	var all []*sendingv1.Worker
	for _, w := range roster {
		all = append(all, w)
	}
	slices.SortFunc(all, func(a, b *sendingv1.Worker) int { return strings.Compare(a.GetWorkerId(), b.GetWorkerId()) })
	mark := now().Add(time.Minute)
	clock.Store(mark.Add(time.Minute).UnixNano()) // the changes below come after the mark

	if got := listAll(t, env, &sendingv1.ListWorkersRequest{UpdatedAfter: timestamppb.New(mark)}, 3); len(got) != 0 {
		t.Fatalf("changed after the mark before any change: %v", got)
	}
	var want []string
	for _, i := range []int{3, 17, 40} {
		if _, err := env.client.UpdateWorker(ctx, &sendingv1.UpdateWorkerRequest{
			Worker: &sendingv1.Worker{Name: all[i].GetName(), FullName: "赵丁"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"full_name"}}}); err != nil {
			t.Fatal(err)
		}
		want = append(want, all[i].GetWorkerId())
	}
	if _, err := env.client.ChangeWorkerStatus(ctx, &sendingv1.ChangeWorkerStatusRequest{Name: all[25].GetName(), Status: stWithdrawn}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.client.DeleteWorker(ctx, &sendingv1.DeleteWorkerRequest{Name: all[8].GetName()}); err != nil {
		t.Fatal(err)
	}
	want = append(want, all[25].GetWorkerId(), all[8].GetWorkerId())
	slices.Sort(want)
	got := listAll(t, env, &sendingv1.ListWorkersRequest{UpdatedAfter: timestamppb.New(mark)}, 2)
	if !slices.Equal(got, want) {
		t.Fatalf("changed after the mark: %v, want %v", got, want)
	}
	page, err := env.client.ListWorkers(ctx, &sendingv1.ListWorkersRequest{UpdatedAfter: timestamppb.New(mark)})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range page.GetWorkers() {
		if w.GetErased() != (w.GetWorkerId() == all[8].GetWorkerId()) {
			t.Fatalf("worker %s erased %v", w.GetWorkerId(), w.GetErased())
		}
	}
	if everyone := listAll(t, env, &sendingv1.ListWorkersRequest{}, 50); len(everyone) != 49 || slices.Contains(everyone, all[8].GetWorkerId()) {
		t.Fatalf("listing without updated_after has %d workers (erased one included: %v), want 49 without it",
			len(everyone), slices.Contains(everyone, all[8].GetWorkerId()))
	}
}
