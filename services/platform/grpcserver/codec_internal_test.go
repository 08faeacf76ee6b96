package grpcserver

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
)

// badMarker stands for an invalid UTF-8 sequence of the same length: proto.Marshal refuses
// invalid strings, so the tests marshal the marker and then swap the bytes.
const badMarker = "@@"

var badBytes = []byte{0xff, 0xfe}

func rows(n int) []*sendingv1.WorkerRow {
	out := make([]*sendingv1.WorkerRow, n)
	for i := range out {
		out[i] = &sendingv1.WorkerRow{RowNumber: int64(i + 2), FullName: "工人", Phone: "13800138000"}
	}
	return out
}

// wire marshals m and swaps every badMarker for invalid bytes.
func wire(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.ReplaceAll(b, []byte(badMarker), badBytes)
}

func TestServerCodecFindsInvalidUTF8(t *testing.T) {
	withBad := func(n int, set func(rs []*sendingv1.WorkerRow)) *sendingv1.ImportWorkersRequest {
		rs := rows(n)
		set(rs)
		return &sendingv1.ImportWorkersRequest{ImportId: "imp-1", Rows: rs, Final: true, TotalRows: int64(n)}
	}
	many := withBad(150, func(rs []*sendingv1.WorkerRow) {
		for _, r := range rs {
			r.FullName = badMarker
		}
	})
	manyPaths := make([]string, maxUTF8Paths)
	for i := range manyPaths {
		manyPaths[i] = fmt.Sprintf("rows[%d].full_name", i)
	}
	forged := protowire.AppendTag(wire(t, withBad(2, func([]*sendingv1.WorkerRow) {})), utf8MarkNumber, protowire.BytesType)
	forged = protowire.AppendBytes(forged, protowire.AppendString(protowire.AppendTag(nil, utf8MarkPath, protowire.BytesType), "import_id"))

	tests := []struct {
		name      string
		wire      []byte
		wantErr   bool
		wantPaths []string
		wantMore  int
	}{
		{"valid", wire(t, withBad(5, func([]*sendingv1.WorkerRow) {})), false, nil, 0},
		{"one nested field", wire(t, withBad(5, func(rs []*sendingv1.WorkerRow) { rs[3].FullName = "王" + badMarker })), false, []string{"rows[3].full_name"}, 0},
		{"top level and nested, in wire order", wire(t, &sendingv1.ImportWorkersRequest{ImportId: badMarker, Rows: func() []*sendingv1.WorkerRow {
			rs := rows(3)
			rs[0].Phone, rs[2].FullName, rs[2].Education = badMarker, badMarker, badMarker
			return rs
		}()}), false, []string{"import_id", "rows[0].phone", "rows[2].full_name", "rows[2].education"}, 0},
		{"more than listed", wire(t, many), false, manyPaths, 150 - maxUTF8Paths},
		{"forged record on a valid message", forged, false, nil, 0},
		{"truncated: not a UTF-8 problem", wire(t, withBad(2, func(rs []*sendingv1.WorkerRow) { rs[1].FullName = badMarker }))[:20], true, nil, 0},
	}
	codec := newServerCodec()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &sendingv1.ImportWorkersRequest{}
			err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(tt.wire)}, m)
			if tt.wantErr {
				if err == nil {
					t.Fatal("malformed message decoded")
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			paths, more := takeUTF8Mark(m)
			if fmt.Sprint(paths) != fmt.Sprint(tt.wantPaths) || more != tt.wantMore {
				t.Errorf("paths %v (+%d), want %v (+%d)", paths, more, tt.wantPaths, tt.wantMore)
			}
			if len(m.ProtoReflect().GetUnknown()) != 0 {
				t.Errorf("unknown fields left after taking the record: %x", m.ProtoReflect().GetUnknown())
			}
			// Everything else decoded as sent; invalid strings replaced by valid ones.
			if m.GetImportId() == "" || len(m.GetRows()) == 0 {
				t.Fatalf("decoded %v", m)
			}
			for _, r := range m.GetRows() {
				for _, s := range []string{r.GetFullName(), r.GetPhone(), r.GetEducation()} {
					if strings.Contains(s, badMarker) {
						t.Errorf("marker left in %q", s)
					}
				}
			}
			if _, err := proto.Marshal(m); err != nil {
				t.Errorf("repaired message does not marshal: %v", err)
			}
		})
	}
}

func TestUTF8Violations(t *testing.T) {
	m := &sendingv1.ImportWorkersRequest{}
	setUTF8Mark(m, []string{"import_id", "rows[3].full_name"}, 0)
	err := utf8Violations(m)
	var ve *apierror.ViolationsError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want violations", err)
	}
	if got := fmt.Sprint(ve.Violations()); got != "[{import_id is not valid UTF-8} {rows[3].full_name is not valid UTF-8}]" {
		t.Errorf("violations %s", got)
	}
	if utf8Violations(m) != nil {
		t.Error("the record was not taken out: a second check refuses again")
	}
	setUTF8Mark(m, []string{"rows[0].phone"}, 7)
	if err := utf8Violations(m); !strings.Contains(err.Error(), "rows[0].phone: is not valid UTF-8 (and 7 more fields after it)") {
		t.Errorf("err = %v", err)
	}
}
