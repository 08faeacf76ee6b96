package roster

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc/codes"
	"pgregory.net/rapid"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/idnumber"
)

// LookupWorker finds the worker by number (exact match, a lower-case x accepted), answers
// NOT_FOUND for a number nobody has and for an erased worker, refuses an invalid number, and
// records every lookup (found or not) without the number; the number is nowhere in the log, the
// audit bucket or the index's keys.
func TestLookupWorker(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.DebugLevel)
	env := startRosterWith(t, zap.New(core), "", Config{Region: rosterRegion, Now: fixedClock})
	ctx := context.Background()
	rows := []*sendingv1.WorkerRow{genRow(0), genRow(1), genRow(2)}
	if _, err := importRows(ctx, env.client, "lk", rows, 2); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	roster, _ := rosterSnapshot(t, env.db)
	for _, r := range rows {
		names[r.IdNumber] = roster[r.IdNumber].GetName()
	}
	if _, err := env.client.DeleteWorker(ctx, &sendingv1.DeleteWorkerRequest{Name: names[rows[2].IdNumber]}); err != nil {
		t.Fatal(err)
	}
	absent := genRow(3).IdNumber
	wrongCheck := rows[0].IdNumber[:17] + "1"
	if idnumber.CheckChar(rows[0].IdNumber[:17]) == '1' {
		wrongCheck = rows[0].IdNumber[:17] + "2"
	}

	tests := []struct {
		name, idn string
		code      codes.Code
		want      string // worker found
	}{
		{"found", rows[0].IdNumber, codes.OK, names[rows[0].IdNumber]},
		{"found, lower-case x and spaces", " " + strings.ToLower(rows[1].IdNumber) + " ", codes.OK, names[rows[1].IdNumber]},
		{"erased worker", rows[2].IdNumber, codes.NotFound, ""},
		{"nobody", absent, codes.NotFound, ""},
		{"wrong check character", wrongCheck, codes.InvalidArgument, ""},
		{"empty", "", codes.InvalidArgument, ""},
	}
	recorded := 0
	for _, tt := range tests {
		resp, err := env.client.LookupWorker(ctx, &sendingv1.LookupWorkerRequest{IdNumber: tt.idn})
		if tt.code != codes.OK {
			wantCode(t, err, tt.code)
		} else if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		} else {
			if resp.GetWorker().GetName() != tt.want {
				t.Errorf("%s: found %s, want %s", tt.name, resp.GetWorker().GetName(), tt.want)
			}
			if resp.GetWorker().GetIdNumber() == tt.idn || !strings.Contains(resp.GetWorker().GetIdNumber(), "*") {
				t.Errorf("%s: the default view must mask the number, got %q", tt.name, resp.GetWorker().GetIdNumber())
			}
		}
		if tt.code == codes.InvalidArgument {
			continue
		}
		recorded++
		list, err := env.client.ListLookupRecords(ctx, &sendingv1.ListLookupRecordsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		recs := list.GetLookupRecords()
		if len(recs) != recorded {
			t.Fatalf("%s: %d records, want %d", tt.name, len(recs), recorded)
		}
		last := recs[len(recs)-1]
		if last.GetWorker() != tt.want || last.GetCaller() != AnonymousCaller || !last.GetLookupTime().AsTime().Equal(fixedClock()) ||
			last.GetName() != fmt.Sprintf("lookupRecords/%d", recorded) {
			t.Errorf("%s: record %v", tt.name, last)
		}
		if tt.code == codes.OK && resp.GetLookupRecord() != last.GetName() {
			t.Errorf("%s: response names record %s, want %s", tt.name, resp.GetLookupRecord(), last.GetName())
		}
	}

	// Paging: one record a page, all of them in order.
	var got []string
	tok := ""
	for {
		list, err := env.client.ListLookupRecords(ctx, &sendingv1.ListLookupRecordsRequest{PageSize: 1, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range list.GetLookupRecords() {
			got = append(got, r.GetName())
		}
		if tok = list.GetNextPageToken(); tok == "" {
			break
		}
	}
	if len(got) != recorded || got[0] != "lookupRecords/1" || got[len(got)-1] != fmt.Sprintf("lookupRecords/%d", recorded) {
		t.Errorf("paged records %v", got)
	}

	// Privacy: no number in the log, the audit bucket or the index keys.
	numbers := [][]byte{[]byte(rows[0].IdNumber), []byte(rows[1].IdNumber), []byte(rows[2].IdNumber), []byte(absent)}
	for _, e := range logs.All() {
		line := fmt.Sprint(e.Message, e.ContextMap())
		for _, n := range numbers {
			if strings.Contains(line, string(n)) {
				t.Errorf("log line holds an identity number: %s", e.Message)
			}
		}
	}
	err := env.db.View(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{BucketLookupRecords, BucketWorkerByIDHash} {
			err := tx.Bucket(name).ForEach(func(k, v []byte) error {
				for _, n := range numbers {
					if bytes.Contains(k, n) || bytes.Contains(v, n) || bytes.Contains(k, n[:17]) {
						t.Errorf("bucket %s holds an identity number", name)
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if tx.Bucket(bucketWorkerByIDNumberV7) != nil {
			t.Error("the index of numbers in clear exists")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// After random imports, updates and deletes, the index by identity number names exactly the
// live workers of a full scan, and LookupWorker finds each of them.
func TestPropertyIDIndexAgreesWithScan(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	ctx := context.Background()
	n := 0
	rapid.Check(t, func(rt *rapid.T) {
		for range rapid.IntRange(1, 6).Draw(rt, "steps") {
			switch rapid.IntRange(0, 2).Draw(rt, "op") {
			case 0: // import rows, some of them known already
				var rows []*sendingv1.WorkerRow
				for range rapid.IntRange(1, 3).Draw(rt, "rows") {
					r := genRow(rapid.IntRange(0, 20).Draw(rt, "row"))
					r.RowNumber = int64(len(rows) + 1)
					rows = append(rows, r)
				}
				n++
				if _, err := importRows(ctx, env.client, fmt.Sprintf("prop-%d", n), rows, 2); err != nil {
					rt.Fatal(err)
				}
			case 1, 2: // delete a live worker (updates cannot change the number)
				roster, _ := rosterSnapshot(t, env.db)
				var live []string
				for _, w := range roster {
					live = append(live, w.GetName())
				}
				if len(live) == 0 {
					continue
				}
				name := rapid.SampledFrom(slices.Sorted(slices.Values(live))).Draw(rt, "worker")
				if _, err := env.client.DeleteWorker(ctx, &sendingv1.DeleteWorkerRequest{Name: name}); err != nil {
					rt.Fatal(err)
				}
			}
		}
		roster, indexN := rosterSnapshot(t, env.db)
		if indexN != len(roster) {
			rt.Fatalf("index has %d entries, the roster %d live workers", indexN, len(roster))
		}
		for idn, w := range roster {
			resp, err := env.client.LookupWorker(ctx, &sendingv1.LookupWorkerRequest{IdNumber: idn})
			if err != nil || resp.GetWorker().GetName() != w.GetName() {
				rt.Fatalf("lookup of %s: %v, %v", w.GetName(), resp.GetWorker().GetName(), err)
			}
		}
	})
}
