package roster

import (
	"bytes"
	"encoding/hex"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
)

// The hand protowire codec of the import record as it was before
// labourlink.storage.v1.ImportRecord, copied verbatim (renamed): records in existing data files
// were written by oldMarshalImportRecord.

const (
	oldRecSummary    protowire.Number = 1
	oldRecComplete   protowire.Number = 2
	oldRecLastRow    protowire.Number = 3
	oldRecImportDate protowire.Number = 4
	oldRecEntries    protowire.Number = 5
	oldRecUpdateTime protowire.Number = 6
)

func oldMarshalImportRecord(r *importRecord) ([]byte, error) {
	var out []byte
	appendMsg := func(num protowire.Number, m proto.Message) error {
		b, err := deterministic.Marshal(m)
		if err != nil {
			return err
		}
		out = protowire.AppendTag(out, num, protowire.BytesType)
		out = protowire.AppendBytes(out, b)
		return nil
	}
	if err := appendMsg(oldRecSummary, r.summary); err != nil {
		return nil, err
	}
	if r.complete {
		out = protowire.AppendTag(out, oldRecComplete, protowire.VarintType)
		out = protowire.AppendVarint(out, 1)
	}
	out = protowire.AppendTag(out, oldRecLastRow, protowire.VarintType)
	out = protowire.AppendVarint(out, uint64(r.lastRow))
	if err := appendMsg(oldRecImportDate, r.importDate); err != nil {
		return nil, err
	}
	out = protowire.AppendTag(out, oldRecEntries, protowire.VarintType)
	out = protowire.AppendVarint(out, uint64(r.entries))
	if err := appendMsg(oldRecUpdateTime, timestamppb.New(r.updateTime)); err != nil {
		return nil, err
	}
	return out, nil
}

func oldUnmarshalImportRecord(v []byte) (importRecord, error) {
	r := importRecord{summary: &commonv1.ImportSummary{}, importDate: &commonv1.Date{}}
	for len(v) > 0 {
		num, typ, n := protowire.ConsumeTag(v)
		if n < 0 {
			return r, protowire.ParseError(n)
		}
		v = v[n:]
		switch {
		case typ == protowire.BytesType && (num == oldRecSummary || num == oldRecImportDate || num == oldRecUpdateTime):
			b, m := protowire.ConsumeBytes(v)
			if m < 0 {
				return r, protowire.ParseError(m)
			}
			v = v[m:]
			var err error
			switch num {
			case oldRecSummary:
				err = proto.Unmarshal(b, r.summary)
			case oldRecImportDate:
				err = proto.Unmarshal(b, r.importDate)
			default:
				ts := &timestamppb.Timestamp{}
				err = proto.Unmarshal(b, ts)
				r.updateTime = ts.AsTime()
			}
			if err != nil {
				return r, err
			}
		case typ == protowire.VarintType && (num == oldRecComplete || num == oldRecLastRow || num == oldRecEntries):
			x, m := protowire.ConsumeVarint(v)
			if m < 0 {
				return r, protowire.ParseError(m)
			}
			v = v[m:]
			switch num {
			case oldRecComplete:
				r.complete = x != 0
			case oldRecLastRow:
				r.lastRow = int64(x)
			default:
				r.entries = int64(x)
			}
		default:
			m := protowire.ConsumeFieldValue(num, typ, v)
			if m < 0 {
				return r, protowire.ParseError(m)
			}
			v = v[m:]
		}
	}
	return r, nil
}

// sameImportRecord compares decoded records, nil-ness of the messages included (a decoder
// never returns a nil summary or import date).
func sameImportRecord(a, b importRecord) bool {
	return (a.summary == nil) == (b.summary == nil) && proto.Equal(a.summary, b.summary) &&
		a.complete == b.complete && a.lastRow == b.lastRow &&
		(a.importDate == nil) == (b.importDate == nil) && proto.Equal(a.importDate, b.importDate) &&
		a.entries == b.entries && a.updateTime.Equal(b.updateTime) && a.updateTime.IsZero() == b.updateTime.IsZero()
}

// goldenImportRecordHex was written by oldMarshalImportRecord for the first case of
// TestImportRecordGolden before the hand codec was deleted.
const goldenImportRecordHex = "0a1a0a0e726f737465722d323032362d3033100918052001280130021001180b220708ea0f100318012803320808d8bc8ecd061005"

// TestImportRecordGolden: records written by the hand codec read back the same through
// storagev1.ImportRecord, and the records the message writes read back the same with either
// codec. The bytes are the same but where the hand encoder wrote a zero last_row or
// rejection_entries, or an empty summary or import date, which the message leaves out.
func TestImportRecordGolden(t *testing.T) {
	t.Parallel()
	full := importRecord{
		summary:    &commonv1.ImportSummary{ImportId: "roster-2026-03", RowsReceived: 9, Created: 5, Updated: 1, Unchanged: 1, Rejected: 2},
		complete:   true,
		lastRow:    11,
		importDate: &commonv1.Date{Year: 2026, Month: 3, Day: 1},
		entries:    3,
		updateTime: time.Date(2026, 3, 1, 2, 3, 4, 5, time.UTC),
	}
	cases := []struct {
		r         importRecord
		sameBytes bool
	}{
		{full, true},
		{importRecord{summary: &commonv1.ImportSummary{ImportId: "started"}, importDate: &commonv1.Date{Year: 2026, Month: 1, Day: 31}, updateTime: time.Unix(0, 0).UTC()}, false},
		{importRecord{summary: full.summary, lastRow: -1, importDate: full.importDate, entries: 1 << 40, updateTime: full.updateTime}, true},
		{importRecord{updateTime: full.updateTime}, false}, // nil summary and import date
	}
	for _, c := range cases {
		old, err := oldMarshalImportRecord(&c.r)
		if err != nil {
			t.Fatal(err)
		}
		want, err := oldUnmarshalImportRecord(old)
		if err != nil {
			t.Fatal(err)
		}
		got, err := unmarshalImportRecord(old)
		if err != nil || !sameImportRecord(got, want) {
			t.Errorf("old bytes of %+v decode to %+v, %v; the hand codec read %+v", c.r, got, err, want)
		}
		v, err := c.r.marshal()
		if err != nil {
			t.Fatal(err)
		}
		if c.sameBytes && !bytes.Equal(v, old) {
			t.Errorf("marshal(%+v) = %x, the hand codec wrote %x", c.r, v, old)
		}
		for name, decode := range map[string]func([]byte) (importRecord, error){"new": unmarshalImportRecord, "old": oldUnmarshalImportRecord} {
			if got, err := decode(v); err != nil || !sameImportRecord(got, want) {
				t.Errorf("%s decoder on new bytes of %+v: %+v, %v; want %+v", name, c.r, got, err, want)
			}
		}
	}

	fixture, err := hex.DecodeString(goldenImportRecordHex)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := unmarshalImportRecord(fixture); err != nil || !sameImportRecord(got, full) {
		t.Errorf("golden fixture decodes to %+v, %v; want %+v", got, err, full)
	}
	if v, _ := full.marshal(); !bytes.Equal(v, fixture) {
		t.Errorf("marshal = %x, golden fixture %x", v, fixture)
	}

	// A record without update_time has the zero time (not 1970); unknown fields and a known
	// field of the wrong wire type are skipped.
	tb, err := deterministic.Marshal(timestamppb.New(full.updateTime))
	if err != nil {
		t.Fatal(err)
	}
	noTime := append([]byte(nil), fixture[:len(fixture)-2-len(tb)]...) // update_time is last
	noTime = protowire.AppendTag(noTime, 99, protowire.BytesType)
	noTime = protowire.AppendString(noTime, "later")
	noTime = protowire.AppendTag(noTime, oldRecLastRow, protowire.BytesType)
	noTime = protowire.AppendString(noTime, "x")
	wantNoTime := full
	wantNoTime.updateTime = time.Time{}
	for name, decode := range map[string]func([]byte) (importRecord, error){"new": unmarshalImportRecord, "old": oldUnmarshalImportRecord} {
		if got, err := decode(noTime); err != nil || !sameImportRecord(got, wantNoTime) {
			t.Errorf("%s decoder on a record without update_time: %+v, %v", name, got, err)
		}
	}
}
