package roster

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"

	"go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"pgregory.net/rapid"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
)

// FindWorkers answers from the county-and-name index: an exact name within a county (a middle
// dot typed as • or ・ matches ·), every name with a prefix, nobody in another county, paged in
// name then worker-id order; each call is recorded (kind NAME, the county, the workers found) and
// the name is in no record.
func TestFindWorkers(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	ctx := context.Background()
	a, b := testCounties[0], testCounties[1]
	named := func(i int, name, county string) *sendingv1.WorkerRow {
		r := genRow(i)
		r.FullName, r.HomeCounty, r.RowNumber = name, county, int64(i+2)
		return r
	}
	rows := []*sendingv1.WorkerRow{
		named(0, "张三", a), named(1, "张三", a), named(2, "张三", b), named(3, "张三丰", a),
		named(4, "阿依古丽·买买提", a), named(5, "李四", a),
	}
	if _, err := importRows(ctx, env.client, "find", rows, 4); err != nil {
		t.Fatal(err)
	}
	roster, _ := rosterSnapshot(t, env.db)
	nameOf := func(r *sendingv1.WorkerRow) string { return roster[r.IdNumber].GetName() }
	sortedNames := func(rs ...*sendingv1.WorkerRow) []string {
		var out []string
		for _, r := range rs {
			out = append(out, nameOf(r))
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		name, county, full string
		prefix             bool
		want               []string
	}{
		{"exact, two workers", a, "张三", false, sortedNames(rows[0], rows[1])},
		{"exact, spaces", a, " 张三 ", false, sortedNames(rows[0], rows[1])},
		{"other county", b, "张三", false, sortedNames(rows[2])},
		{"prefix", a, "张", true, append(sortedNames(rows[0], rows[1]), nameOf(rows[3]))},
		{"bullet for the middle dot", a, "阿依古丽•买买提", false, sortedNames(rows[4])},
		{"katakana middle dot", a, "阿依古丽・买买提", false, sortedNames(rows[4])},
		{"nobody", a, "王五", false, nil},
		{"no prefix match without prefix", a, "张三丰丰", false, nil},
	}
	for i, tt := range tests {
		resp, err := env.client.FindWorkers(ctx, &sendingv1.FindWorkersRequest{HomeCounty: tt.county, FullName: tt.full, Prefix: tt.prefix})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var got []string
		for _, w := range resp.GetWorkers() {
			got = append(got, w.GetName())
			if w.GetHomeCounty() != tt.county {
				t.Errorf("%s: worker of county %s", tt.name, w.GetHomeCounty())
			}
			if !bytes.Contains([]byte(w.GetPhone()), []byte("****")) || !bytes.Contains([]byte(w.GetIdNumber()), []byte("*")) {
				t.Errorf("%s: phone %q / number %q not masked", tt.name, w.GetPhone(), w.GetIdNumber())
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: found %v, want %v", tt.name, got, tt.want)
		}
		if want := fmt.Sprintf("lookupRecords/%d", i+1); resp.GetLookupRecord() != want {
			t.Errorf("%s: record %s, want %s", tt.name, resp.GetLookupRecord(), want)
		}
	}

	// Paging one worker a page through the prefix search, and the token is bound to the search.
	var paged []string
	tok := ""
	for {
		resp, err := env.client.FindWorkers(ctx, &sendingv1.FindWorkersRequest{HomeCounty: a, FullName: "张", Prefix: true, PageSize: 1, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range resp.GetWorkers() {
			paged = append(paged, w.GetName())
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
		_, err = env.client.FindWorkers(ctx, &sendingv1.FindWorkersRequest{HomeCounty: a, FullName: "李", Prefix: true, PageToken: tok})
		wantCode(t, err, codes.InvalidArgument)
	}
	if !slices.Equal(paged, tests[3].want) {
		t.Errorf("paged %v, want %v", paged, tests[3].want)
	}

	// The audit: kind, county and workers found, never the name.
	list, err := env.client.ListLookupRecords(ctx, &sendingv1.ListLookupRecordsRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	first := list.GetLookupRecords()[0]
	if first.GetKind() != sendingv1.LookupKind_LOOKUP_KIND_NAME || first.GetHomeCounty() != a || first.GetPrefix() ||
		!slices.Equal(first.GetFoundWorkers(), tests[0].want) || first.GetWorker() != tests[0].want[0] {
		t.Errorf("record %v", first)
	}
	err = env.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(BucketLookupRecords).ForEach(func(_, v []byte) error {
			for _, n := range []string{"张三", "阿依古丽", "王五"} {
				if bytes.Contains(v, []byte(n)) {
					t.Errorf("a lookup record holds the name %s", n)
				}
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}

	// Bad requests change nothing and are not recorded.
	for _, r := range []*sendingv1.FindWorkersRequest{
		{FullName: "张三"},
		{HomeCounty: "440103", FullName: "张三"},
		{HomeCounty: a},
		{HomeCounty: a, FullName: "张3"},
		{HomeCounty: a, FullName: "张三", PageSize: -1},
	} {
		_, err := env.client.FindWorkers(ctx, r)
		wantCode(t, err, codes.InvalidArgument)
	}
	after, err := env.client.ListLookupRecords(ctx, &sendingv1.ListLookupRecordsRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(after.GetLookupRecords()) != len(list.GetLookupRecords()) {
		t.Errorf("refused requests were recorded")
	}
}

// indexFromScan returns the keys both county indexes must hold for the workers of a full scan.
func indexFromScan(t interface{ Fatal(...any) }, tx *bbolt.Tx) (byCounty, byName []string) {

	err := ForEachWorker(tx, func(w *sendingv1.Worker) error {
		if w.GetErased() {
			return nil
		}
		byCounty = append(byCounty, w.GetHomeCounty()+w.GetWorkerId())
		byName = append(byName, w.GetHomeCounty()+nameKey(w.GetFullName())+"\x00"+w.GetWorkerId())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(byCounty)
	slices.Sort(byName)
	return byCounty, byName
}

func bucketKeys(tx *bbolt.Tx, name []byte) []string {
	var out []string
	_ = tx.Bucket(name).ForEach(func(k, _ []byte) error {
		out = append(out, string(k))
		return nil
	})
	return out
}

// After random imports (new and known workers, changed names and counties), updates of name and
// county, status changes and erasures, the county indexes always equal what a full scan of the
// roster says they hold, and ListWorkers by county (which reads the index) lists the scan's
// workers of that county.
func TestPropertyCountyIndexAgreesWithScan(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	ctx := context.Background()
	names := []string{"张三", "张三丰", "李四", "阿依古丽·买买提", "阿依古丽•买买提", "王 五"}
	counties := testCounties[:3]
	n := 0
	live := func() []string {
		roster, _ := rosterSnapshot(t, env.db)
		var out []string
		for _, w := range roster {
			out = append(out, w.GetName())
		}
		slices.Sort(out)
		return out
	}
	rapid.Check(t, func(rt *rapid.T) {
		for range rapid.IntRange(1, 6).Draw(rt, "steps") {
			switch rapid.IntRange(0, 3).Draw(rt, "op") {
			case 0: // import rows, some of known workers with another name or county
				var rows []*sendingv1.WorkerRow
				for range rapid.IntRange(1, 3).Draw(rt, "rows") {
					r := genRow(rapid.IntRange(0, 15).Draw(rt, "row"))
					r.FullName = rapid.SampledFrom(names).Draw(rt, "name")
					r.HomeCounty = rapid.SampledFrom(counties).Draw(rt, "county")
					r.RowNumber = int64(len(rows) + 1)
					rows = append(rows, r)
				}
				n++
				if _, err := importRows(ctx, env.client, fmt.Sprintf("cprop-%d", n), rows, 2); err != nil {
					rt.Fatal(err)
				}
			case 1: // update name and county
				ws := live()
				if len(ws) == 0 {
					continue
				}
				_, err := env.client.UpdateWorker(ctx, &sendingv1.UpdateWorkerRequest{
					Worker: &sendingv1.Worker{
						Name:       rapid.SampledFrom(ws).Draw(rt, "worker"),
						FullName:   rapid.SampledFrom(names).Draw(rt, "name"),
						HomeCounty: rapid.SampledFrom(counties).Draw(rt, "county"),
					},
					UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"full_name", "home_county"}},
				})
				if err != nil {
					rt.Fatal(err)
				}
			case 2: // a status change (refused ones change nothing)
				ws := live()
				if len(ws) == 0 {
					continue
				}
				to := rapid.SampledFrom([]sendingv1.WorkerStatus{sendingv1.WorkerStatus_WORKER_STATUS_WITHDRAWN, sendingv1.WorkerStatus_WORKER_STATUS_AVAILABLE}).Draw(rt, "status")
				_, _ = env.client.ChangeWorkerStatus(ctx, &sendingv1.ChangeWorkerStatusRequest{Name: rapid.SampledFrom(ws).Draw(rt, "worker"), Status: to})
			case 3: // erase
				ws := live()
				if len(ws) == 0 {
					continue
				}
				if _, err := env.client.DeleteWorker(ctx, &sendingv1.DeleteWorkerRequest{Name: rapid.SampledFrom(ws).Draw(rt, "worker")}); err != nil {
					rt.Fatal(err)
				}
			}
		}
		var perCounty map[string][]string
		err := env.db.View(func(tx *bbolt.Tx) error {
			wantC, wantN := indexFromScan(rt, tx)
			if got := bucketKeys(tx, BucketWorkersByCounty); !slices.Equal(got, wantC) {
				rt.Fatalf("county index %q, scan says %q", got, wantC)
			}
			if got := bucketKeys(tx, BucketWorkersByCountyName); !slices.Equal(got, wantN) {
				rt.Fatalf("county-and-name index %q, scan says %q", got, wantN)
			}
			perCounty = map[string][]string{}
			for _, k := range wantC {
				perCounty[k[:countyLen]] = append(perCounty[k[:countyLen]], WorkerName(k[countyLen:]))
			}
			return nil
		})
		if err != nil {
			rt.Fatal(err)
		}
		for _, c := range counties {
			var got []string
			tok := ""
			for {
				resp, err := env.client.ListWorkers(ctx, &sendingv1.ListWorkersRequest{HomeCounty: c, PageSize: 2, PageToken: tok})
				if err != nil {
					rt.Fatal(err)
				}
				for _, w := range resp.GetWorkers() {
					got = append(got, w.GetName())
				}
				if tok = resp.GetNextPageToken(); tok == "" {
					break
				}
			}
			if !slices.Equal(got, perCounty[c]) {
				rt.Fatalf("ListWorkers(home_county %s) = %v, scan says %v", c, got, perCounty[c])
			}
		}
	})
}
