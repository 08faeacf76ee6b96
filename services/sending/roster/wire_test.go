package roster

import (
	"context"
	"strings"
	"testing"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/idnumber"
	"github.com/eastwest/labourlink/services/platform/store"
)

// wireViews are the views a read is answered in.
var wireViews = []sendingv1.WorkerView{
	sendingv1.WorkerView_WORKER_VIEW_UNSPECIFIED,
	sendingv1.WorkerView_WORKER_VIEW_BASIC,
	sendingv1.WorkerView_WORKER_VIEW_FULL,
}

// decodeEncoded decodes the workers an encodedWorkers put in a response.
func decodeEncoded(t *testing.T, m proto.Message) []*sendingv1.Worker {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out []*sendingv1.Worker
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatal(protowire.ParseError(n))
		}
		b = b[n:]
		v := protowire.ConsumeFieldValue(num, typ, b)
		if v < 0 {
			t.Fatal(protowire.ParseError(v))
		}
		if num == 1 && typ == protowire.BytesType {
			raw, _ := protowire.ConsumeBytes(b)
			w := &sendingv1.Worker{}
			if err := proto.Unmarshal(raw, w); err != nil {
				t.Fatal(err)
			}
			out = append(out, w)
		}
		b = b[v:]
	}
	return out
}

// protoDiff is "" when want and got are equal messages, else both in text.
func protoDiff(want, got proto.Message) string {
	if proto.Equal(want, got) {
		return ""
	}
	return "want " + prototext.Format(want) + "\ngot  " + prototext.Format(got)
}

// wireCases are stored records (as BucketWorkers holds them) the wire path must answer as the
// decoding path does.
func wireCases() map[string]*sendingv1.Worker {
	id := makeIDNumber("520102", fixedClock().AddDate(-30, 0, 0), 5)
	full := &sendingv1.Worker{
		WorkerId: "520000-AAAAAAAAAAAAAAAA", IdNumber: id, FullName: "张三", Sex: commonv1.Sex_SEX_MALE,
		BirthDate: &commonv1.Date{Year: 1996, Month: 11, Day: 20}, Phone: "13812345678", HomeCounty: "520102",
		RegisteredPoor: true, Occupations: []string{"8212", "9313"}, Education: sendingv1.Education(2),
		PreferredDestinations: []string{"440000"}, AvailableFrom: &commonv1.Date{Year: 2026, Month: 12, Day: 1},
		HealthCheckPassed: true, HealthCheckDate: &commonv1.Date{Year: 2026, Month: 10, Day: 1},
		Status: sendingv1.WorkerStatus_WORKER_STATUS_AVAILABLE, CreateTime: timestamppb.New(fixedClock()),
		UpdateTime: timestamppb.New(fixedClock()), StatusReason: "back: 电话 13912345678, 身份证 " + otherID,
		StatusChangeTime: timestamppb.New(fixedClock()), Etag: "17",
		Trips:           []*sendingv1.Trip{{BatchId: "520000-B1", ReceivingRegion: "440000", Vacancy: "vacancies/1"}},
		LocalPlacements: []*sendingv1.LocalPlacement{{LocalEmployer: "localEmployers/1"}},
	}
	noEtag := proto.Clone(full).(*sendingv1.Worker)
	noEtag.Etag = ""
	noEtagNoTail := proto.Clone(noEtag).(*sendingv1.Worker)
	noEtagNoTail.Trips, noEtagNoTail.LocalPlacements = nil, nil
	named := proto.Clone(full).(*sendingv1.Worker)
	named.Name = "workers/stale-name-from-an-old-record"
	tombstone := &sendingv1.Worker{WorkerId: full.WorkerId, Erased: true, Status: sendingv1.WorkerStatus(5), UpdateTime: full.UpdateTime, Etag: "40"}
	odd := proto.Clone(noEtagNoTail).(*sendingv1.Worker)
	odd.IdNumber, odd.Phone, odd.FullName = "５２０１２３４５６７", "1381234", "李四 13812345678"
	short := proto.Clone(noEtagNoTail).(*sendingv1.Worker)
	short.IdNumber, short.Phone, short.FullName, short.StatusReason = "12345678", "13812345", "王五", "no digits here"
	nine := proto.Clone(short).(*sendingv1.Worker)
	nine.IdNumber, nine.Phone = "123456789", "138123456789012"
	unknown := proto.Clone(full).(*sendingv1.Worker)
	unknown.ProtoReflect().SetUnknown(protowire.AppendString(protowire.AppendTag(nil, 90, protowire.BytesType), "from a newer schema"))
	return map[string]*sendingv1.Worker{
		"every field": full, "no etag": noEtag, "no etag, nothing after it": noEtagNoTail,
		"stored name": named, "tombstone": tombstone, "non-ASCII and short values": odd,
		"unknown field": unknown, "empty": {WorkerId: full.WorkerId},
		"short ASCII values": short, "longer ASCII values": nine,
	}
}

// The wire path answers every stored record, in every view, with what the decoding path
// (Read, then maskOwned) answers: the identity number, the phone and the free text masked the
// same way for every view but FULL.
func TestEncodedWorkerIsTheMaskedRecord(t *testing.T) {
	const key = "520000-BBBBBBBBBBBBBBBB"
	for name, stored := range wireCases() {
		rec, err := proto.MarshalOptions{Deterministic: true}.Marshal(stored)
		if err != nil {
			t.Fatal(err)
		}
		for _, view := range wireViews {
			decoded := &sendingv1.Worker{}
			if err := proto.Unmarshal(rec, decoded); err != nil {
				t.Fatal(err)
			}
			decoded.Name = WorkerName(key) // as Read sets it
			want := maskOwned(decoded, view)

			enc := encodedWorkers{field: getWorkerField, view: view, hint: 1}
			if err := enc.add([]byte(key), rec); err != nil {
				t.Fatalf("%s, %v: %v", name, view, err)
			}
			resp := &sendingv1.GetWorkerResponse{}
			enc.setIn(resp)
			var got sendingv1.GetWorkerResponse
			b, _ := proto.Marshal(resp)
			if err := proto.Unmarshal(b, &got); err != nil {
				t.Fatalf("%s, %v: response does not decode: %v", name, view, err)
			}
			if diff := protoDiff(want, got.GetWorker()); diff != "" {
				t.Errorf("%s, %v: wire path differs from the decoding path:\n%s", name, view, diff)
			}
			if view != sendingv1.WorkerView_WORKER_VIEW_FULL && stored.GetIdNumber() != "" &&
				strings.Contains(string(b), stored.GetIdNumber()) {
				t.Errorf("%s, %v: the identity number is in the answer", name, view)
			}
		}
	}
}

// Many workers in one response (a ListWorkers page) keep their order and their masks, and the
// response's own fields stay.
func TestEncodedWorkersInAPage(t *testing.T) {
	cases := wireCases()
	enc := encodedWorkers{field: listWorkersField, view: sendingv1.WorkerView_WORKER_VIEW_BASIC, hint: 2}
	var want []*sendingv1.Worker
	for _, name := range []string{"every field", "tombstone", "no etag", "unknown field"} {
		rec, _ := proto.Marshal(cases[name])
		key := cases[name].GetWorkerId()
		if err := enc.add([]byte(key), rec); err != nil {
			t.Fatal(err)
		}
		d := &sendingv1.Worker{}
		_ = proto.Unmarshal(rec, d)
		d.Name = WorkerName(key)
		want = append(want, maskOwned(d, sendingv1.WorkerView_WORKER_VIEW_BASIC))
	}
	resp := &sendingv1.ListWorkersResponse{NextPageToken: "next"}
	enc.setIn(resp)
	b, _ := proto.Marshal(resp)
	var got sendingv1.ListWorkersResponse
	if err := proto.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if diff := protoDiff(&sendingv1.ListWorkersResponse{Workers: want, NextPageToken: "next"}, &got); diff != "" {
		t.Errorf("page:\n%s", diff)
	}
	if n := len(decodeEncoded(t, resp)); n != 4 {
		t.Errorf("%d workers on the wire, want 4", n)
	}
}

// A worker longer than the room kept for its length (lenRoom) is moved, not cut.
func TestEncodedWorkerLongerThanLengthRoom(t *testing.T) {
	w := wireCases()["every field"]
	w.StatusReason = strings.Repeat("长", 1<<20) // 3 MiB: a length of 4 varint bytes
	rec, _ := proto.Marshal(w)
	enc := encodedWorkers{field: getWorkerField, view: sendingv1.WorkerView_WORKER_VIEW_BASIC}
	if err := enc.add([]byte(w.GetWorkerId()), rec); err != nil {
		t.Fatal(err)
	}
	resp := &sendingv1.GetWorkerResponse{}
	enc.setIn(resp)
	b, _ := proto.Marshal(resp)
	var got sendingv1.GetWorkerResponse
	if err := proto.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.GetWorker().GetStatusReason() != w.GetStatusReason() || got.GetWorker().GetIdNumber() != idnumber.Mask(w.GetIdNumber()) {
		t.Error("long worker not answered whole")
	}
}

// A stored record that does not parse is an error naming the worker, not an answer.
func TestEncodedWorkerBadRecord(t *testing.T) {
	enc := encodedWorkers{field: getWorkerField}
	err := enc.add([]byte("520000-CCCCCCCCCCCCCCCC"), []byte{0x0a, 0x05, 'a'})
	if err == nil || !strings.Contains(err.Error(), "520000-CCCCCCCCCCCCCCCC") {
		t.Fatalf("bad record: %v", err)
	}
	if _, _, err := workerState([]byte("x"), []byte{0xff}); err == nil {
		t.Error("workerState of a bad record: no error")
	}
	if enc.len() != 0 || len(enc.buf) != 0 {
		t.Error("a bad record left bytes in the answer")
	}
}

// Through the service: every worker of an imported roster (one of them erased, one changed, one
// with an identity number and a phone in its stored free text) is answered by GetWorker in every
// view, and by ListWorkers pages with and without filters, as the decoding path answers it.
func TestReadsServeTheMaskedRecords(t *testing.T) {
	t.Parallel()
	env := startRoster(t, nil, "")
	ctx := context.Background()
	rows := make([]*sendingv1.WorkerRow, 30)
	for i := range rows {
		rows[i] = genRow(i)
	}
	if _, err := importRows(ctx, env.client, "wire", rows, 10); err != nil {
		t.Fatal(err)
	}
	page, err := env.client.ListWorkers(ctx, &sendingv1.ListWorkersRequest{PageSize: 100})
	if err != nil || len(page.GetWorkers()) != len(rows) {
		t.Fatalf("list: %d workers, %v", len(page.GetWorkers()), err)
	}
	first, _ := ParseWorkerName(page.GetWorkers()[0].GetName())
	second, _ := ParseWorkerName(page.GetWorkers()[1].GetName())
	if err := env.db.Update(func(tx *bbolt.Tx) error {
		w, err := Read(tx, first)
		if err != nil {
			return err
		}
		w.StatusReason = "电话 13912345678 身份证 " + otherID
		return putWorker(tx, w)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.client.DeleteWorker(ctx, &sendingv1.DeleteWorkerRequest{Name: WorkerName(second), RequestId: "erase-second"}); err != nil {
		t.Fatal(err)
	}

	// What the decoding path makes of every record.
	want := map[string]map[sendingv1.WorkerView]*sendingv1.Worker{}
	if err := env.db.View(func(tx *bbolt.Tx) error {
		return workers.Scan(tx, store.Range{}, func(k []byte, _ *sendingv1.Worker) (bool, error) {
			want[string(k)] = map[sendingv1.WorkerView]*sendingv1.Worker{}
			for _, view := range wireViews {
				w, err := Read(tx, string(k))
				if err != nil {
					return false, err
				}
				want[string(k)][view] = maskOwned(w, view)
			}
			return true, nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	for id, views := range want {
		for view, w := range views {
			got, err := env.client.GetWorker(ctx, &sendingv1.GetWorkerRequest{Name: WorkerName(id), View: view})
			if err != nil {
				t.Fatal(err)
			}
			if diff := protoDiff(w, got.GetWorker()); diff != "" {
				t.Errorf("GetWorker %s %v:\n%s", id, view, diff)
			}
		}
	}
	// The county of a worker still listed (every row has a county of its own; the erased one
	// would list nothing).
	county := want[first][sendingv1.WorkerView_WORKER_VIEW_BASIC].GetHomeCounty()
	for _, req := range []*sendingv1.ListWorkersRequest{
		{PageSize: 7},
		{PageSize: 100, Status: sendingv1.WorkerStatus_WORKER_STATUS_AVAILABLE},
		{PageSize: 100, HomeCounty: county},
		{PageSize: 100, UpdatedAfter: timestamppb.New(fixedClock().AddDate(-50, 0, 0))},
		{PageSize: 100, RegisteredPoor: proto.Bool(true)},
	} {
		seen := 0
		for token := ""; ; {
			req.PageToken = token
			page, err := env.client.ListWorkers(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			for _, got := range page.GetWorkers() {
				seen++
				id, _ := ParseWorkerName(got.GetName())
				w := want[id][sendingv1.WorkerView_WORKER_VIEW_BASIC]
				if diff := protoDiff(w, got); diff != "" {
					t.Errorf("ListWorkers %v: %s:\n%s", req, id, diff)
				}
				if w.GetErased() && req.UpdatedAfter == nil {
					t.Errorf("ListWorkers %v lists the erased worker", req)
				}
				if req.HomeCounty != "" && w.GetHomeCounty() != county || req.RegisteredPoor != nil && !w.GetRegisteredPoor() {
					t.Errorf("ListWorkers %v lists %s, which does not match", req, id)
				}
			}
			if token = page.GetNextPageToken(); token == "" {
				break
			}
		}
		if seen == 0 {
			t.Errorf("ListWorkers %v listed nothing", req)
		}
		if req.UpdatedAfter != nil && seen != len(rows) {
			t.Errorf("ListWorkers updated_after: %d workers, want %d (the tombstone too)", seen, len(rows))
		}
		if req.PageSize == 7 && seen != len(rows)-1 {
			t.Errorf("ListWorkers: %d workers, want %d (all but the erased one)", seen, len(rows)-1)
		}
	}
}
