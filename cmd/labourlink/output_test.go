package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	outboxv1 "github.com/eastwest/labourlink/proto/labourlink/outbox/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
)

// -o json prints one JSON document on stdout, the command's response message with the API's
// field names (snake_case, every field present), so that it reads back into the message; notes
// and progress stay on stderr. Each case runs the command against a service in this process.
func TestJSONOutput(t *testing.T) {
	t.Parallel()
	sending, _ := rosterTestService(t)
	receiving := vacancyTestService(t)
	coordination := startCoordination(t, time.Now)
	dir := t.TempDir()
	rosterCSV, ids := spreadsheetCSV()
	rosterFile := filepath.Join(dir, "roster.csv")
	writeFile(t, rosterFile, []byte(rosterCSV))

	for _, c := range []struct {
		name string
		addr string
		args []string
		code int
		// into is the response message the document must read back into (nil: several merged).
		into proto.Message
		// fields are keys the document must have at its top level; first, keys of the first
		// element of the list under fields[0].
		fields, first []string
	}{
		// The import goes first: the other sending cases read its workers.
		{"roster import", sending, []string{"roster", "import", rosterFile}, exitRejected, &commonv1.ImportSummary{},
			[]string{"import_id", "rows_received", "created", "rejected", "rejections", "rejections_truncated"}, nil},
		{"roster list", sending, []string{"roster", "list"}, exitOK, &sendingv1.ListWorkersResponse{},
			[]string{"workers", "next_page_token"}, []string{"worker_id", "home_county", "registered_poor", "status", "id_number"}},
		{"roster get", sending, []string{"roster", "get", "520000-" + strings.Repeat("X", 16)}, exitFailed, nil, nil, nil},
		{"local add", sending, []string{"local", "add", "-name", "花江镇扶贫车间", "-kind", "workshop", "-county", "520424", "-capacity", "3"}, exitOK,
			&sendingv1.CreateLocalEmployerResponse{}, []string{"local_employer"}, nil},
		{"local list", sending, []string{"local", "list"}, exitOK, &sendingv1.ListLocalEmployersResponse{},
			[]string{"local_employers"}, []string{"local_employer_id", "display_name", "kind", "capacity", "placed", "resumed"}},
		{"local summary", sending, []string{"local", "summary"}, exitOK, &sendingv1.GetLocalEmploymentSummaryResponse{}, []string{"by_kind", "total"}, nil},
		{"batches list", sending, []string{"batches", "list"}, exitOK, &sendingv1.ListBatchesResponse{}, []string{"batches"}, nil},
		{"match follow", sending, []string{"match", "follow"}, exitOK, &sendingv1.GetFollowStatusResponse{}, []string{"positions"}, nil},
		{"outbox list", sending, []string{"outbox", "list"}, exitOK, &outboxv1.ListOutboxesResponse{}, []string{"outboxes"}, nil},
		{"outbox quarantine", sending, []string{"outbox", "quarantine"}, exitOK, &outboxv1.ListQuarantinedEntriesResponse{}, []string{"entries"}, nil},
		{"vacancies list", receiving, []string{"vacancies", "list"}, exitOK, &receivingv1.ListVacanciesResponse{},
			[]string{"vacancies", "next_page_token", "revision"}, nil},
		{"reconcile show", coordination, []string{"reconcile", "show"}, exitOK, nil,
			[]string{"summaries", "reconciliations", "discrepancies"}, []string{"sending_region", "receiving_region", "departed", "employed_three_months"}},
		{"assess show", coordination, []string{"assess", "show"}, exitOK, &coordinationv1.ListAssessmentsResponse{},
			[]string{"assessments"}, []string{"region", "role", "numerator", "baseline_source"}},
	} {
		// Not parallel: the sending cases share a service, and the import must come first.
		code, out, errOut := cli(t, append(c.args, "-o", "json", "-addr", c.addr)...)
		if code != c.code {
			t.Errorf("%s: exit %d, want %d\n%s", c.name, code, c.code, errOut)
			continue
		}
		if c.code == exitFailed {
			// A failed call prints nothing on stdout: the error is on stderr.
			if out != "" || !strings.Contains(errOut, "NotFound") {
				t.Errorf("%s: stdout %q, stderr %q", c.name, out, errOut)
			}
			continue
		}
		dec := json.NewDecoder(strings.NewReader(out))
		var doc map[string]json.RawMessage
		if err := dec.Decode(&doc); err != nil {
			t.Errorf("%s: stdout is not a JSON object: %v\n%s", c.name, err, out)
			continue
		}
		if dec.More() {
			t.Errorf("%s: more than one JSON document on stdout:\n%s", c.name, out)
		}
		for _, f := range c.fields {
			if _, ok := doc[f]; !ok {
				t.Errorf("%s: no field %q in\n%s", c.name, f, out)
			}
		}
		if len(c.first) > 0 {
			var list []map[string]json.RawMessage
			if err := json.Unmarshal(doc[c.fields[0]], &list); err != nil || len(list) == 0 {
				t.Errorf("%s: %s is not a list with elements (%v):\n%s", c.name, c.fields[0], err, out)
			} else {
				for _, f := range c.first {
					if _, ok := list[0][f]; !ok {
						t.Errorf("%s: no field %q in the first of %s:\n%s", c.name, f, c.fields[0], out)
					}
				}
			}
		}
		if c.into != nil {
			if err := protojson.Unmarshal([]byte(out), c.into); err != nil {
				t.Errorf("%s: the document does not read back into %T: %v", c.name, c.into, err)
			}
		}
	}

	// roster get of a listed worker: its GetWorkerResponse.
	_, listed, _ := cli(t, "roster", "list", "-o", "json", "-addr", sending)
	var list sendingv1.ListWorkersResponse
	if err := protojson.Unmarshal([]byte(listed), &list); err != nil || len(list.GetWorkers()) == 0 {
		t.Fatalf("roster list -o json: %v\n%s", err, listed)
	}
	id := list.GetWorkers()[0].GetWorkerId()
	code, out, errOut := cli(t, "roster", "get", id, "-o", "json", "-addr", sending)
	var got sendingv1.GetWorkerResponse
	if err := protojson.Unmarshal([]byte(out), &got); code != 0 || err != nil || got.GetWorker().GetWorkerId() != id || !strings.Contains(out, `"worker_id"`) {
		t.Errorf("roster get %s -o json: exit %d, %v\n%s%s", id, code, err, out, errOut)
	}

	// -o table is the default, and the same as none; other values are refused.
	code, table, _ := cli(t, "roster", "list", "-addr", sending)
	code2, table2, _ := cli(t, "roster", "list", "-addr", sending, "-o", "table")
	if code != 0 || code2 != 0 || table != table2 || !strings.Contains(table, ids[0][:6]) || strings.HasPrefix(table, "{") {
		t.Errorf("roster list tables: exit %d and %d\n%s\n%s", code, code2, table, table2)
	}
	if code, _, errOut := cli(t, "roster", "list", "-addr", sending, "-o", "yaml"); code == 0 || !strings.Contains(errOut, "use table or json") {
		t.Errorf("-o yaml: exit %d\n%s", code, errOut)
	}
}

// A command that reads several responses (`reconcile show`) merges their lists into one
// document; a field two responses share would be ambiguous and is refused.
func TestWriteJSONMerged(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	err := writeJSONMerged(&b, &coordinationv1.ListDiscrepanciesResponse{NextPageToken: "x", Discrepancies: []*coordinationv1.Discrepancy{{Name: "discrepancies/1"}}},
		&coordinationv1.ListPairingSummariesResponse{})
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(b.String()), &doc); err != nil {
		t.Fatal(err)
	}
	if _, ok := doc["next_page_token"]; ok || !strings.Contains(string(doc["discrepancies"]), `"discrepancies/1"`) || doc["summaries"] == nil {
		t.Errorf("merged document:\n%s", b.String())
	}
	if err := writeJSONMerged(&b, &coordinationv1.ListDiscrepanciesResponse{}, &coordinationv1.ListDiscrepanciesResponse{}); err == nil {
		t.Error("two responses with the same field merged")
	}
}
