package outbox

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	outboxv1 "github.com/eastwest/labourlink/proto/labourlink/outbox/v1"
)

// The hand protowire codec of the envelope as it was before labourlink.storage.v1.OutboxEntry,
// copied verbatim (renamed): entries in existing data files were written by oldEncodeEnvelope.

func oldEncodeEnvelope(e envelope) ([]byte, error) {
	const (
		fieldDestination protowire.Number = 1
		fieldPayload     protowire.Number = 2
		fieldCreatedAt   protowire.Number = 3
		fieldAttempts    protowire.Number = 4
		fieldKey         protowire.Number = 5
	)
	opts := proto.MarshalOptions{Deterministic: true}
	pb, err := opts.Marshal(e.payload)
	if err != nil {
		return nil, err
	}
	tb, err := opts.Marshal(timestamppb.New(e.createdAt))
	if err != nil {
		return nil, err
	}
	var out []byte
	out = protowire.AppendTag(out, fieldDestination, protowire.BytesType)
	out = protowire.AppendString(out, e.destination)
	out = protowire.AppendTag(out, fieldPayload, protowire.BytesType)
	out = protowire.AppendBytes(out, pb)
	out = protowire.AppendTag(out, fieldCreatedAt, protowire.BytesType)
	out = protowire.AppendBytes(out, tb)
	if e.attempts != 0 {
		out = protowire.AppendTag(out, fieldAttempts, protowire.VarintType)
		out = protowire.AppendVarint(out, uint64(e.attempts))
	}
	if e.key != "" {
		out = protowire.AppendTag(out, fieldKey, protowire.BytesType)
		out = protowire.AppendString(out, e.key)
	}
	return out, nil
}

func oldDecodeEnvelope(v []byte) (envelope, error) {
	const (
		fieldDestination protowire.Number = 1
		fieldPayload     protowire.Number = 2
		fieldCreatedAt   protowire.Number = 3
		fieldAttempts    protowire.Number = 4
		fieldKey         protowire.Number = 5
	)
	e := envelope{payload: &anypb.Any{}}
	ts := &timestamppb.Timestamp{}
	for len(v) > 0 {
		num, typ, n := protowire.ConsumeTag(v)
		if n < 0 {
			return e, protowire.ParseError(n)
		}
		v = v[n:]
		switch {
		case (num == fieldDestination || num == fieldKey) && typ == protowire.BytesType:
			s, n := protowire.ConsumeString(v)
			if n < 0 {
				return e, protowire.ParseError(n)
			}
			if num == fieldKey {
				e.key = s
			} else {
				e.destination = s
			}
			v = v[n:]
		case (num == fieldPayload || num == fieldCreatedAt) && typ == protowire.BytesType:
			b, n := protowire.ConsumeBytes(v)
			if n < 0 {
				return e, protowire.ParseError(n)
			}
			var m proto.Message = e.payload
			if num == fieldCreatedAt {
				m = ts
			}
			if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(b, m); err != nil {
				return e, err
			}
			v = v[n:]
		case num == fieldAttempts && typ == protowire.VarintType:
			x, n := protowire.ConsumeVarint(v)
			if n < 0 {
				return e, protowire.ParseError(n)
			}
			e.attempts = uint32(x)
			v = v[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, v)
			if n < 0 {
				return e, protowire.ParseError(n)
			}
			v = v[n:]
		}
	}
	if e.payload.GetTypeUrl() == "" {
		return e, errors.New("entry has no payload")
	}
	e.createdAt = ts.AsTime()
	return e, nil
}

func sameEnvelope(a, b envelope) bool {
	return a.destination == b.destination && a.key == b.key && proto.Equal(a.payload, b.payload) &&
		a.createdAt.Equal(b.createdAt) && a.attempts == b.attempts
}

// goldenEnvelopeHex was written by oldEncodeEnvelope for the envelope of TestEnvelopeGolden
// before the hand codec was deleted: a fixed record of the format of existing data files.
const goldenEnvelopeHex = "0a06343430303030123d0a2f747970652e676f6f676c65617069732e636f6d2f676f6f676c652e70726f746f6275662e537472696e6756616c7565120a0a0864657061727465641a0b0888f28fcd0610959aef3a20032a0c626174636865732f622d3137"

// TestEnvelopeGolden: entries written by the hand codec read back the same through
// storagev1.OutboxEntry, and the message writes the very same bytes (so the old codec reads
// them too).
func TestEnvelopeGolden(t *testing.T) {
	payload, err := anypb.New(wrapperspb.String("departed"))
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 3, 1, 8, 30, 0, 123456789, time.UTC)
	cases := []envelope{
		{destination: "coordination", payload: payload, createdAt: created},
		{destination: "440000", payload: payload, createdAt: created, attempts: 3, key: "batches/b-17"},
		{destination: "coordination", payload: payload, createdAt: created, attempts: 1<<32 - 1, key: "k"},
		{destination: "coordination", payload: &anypb.Any{TypeUrl: "type.googleapis.com/x.Y"}, createdAt: time.Unix(0, 0).UTC()},
		{destination: "coordination", payload: payload, createdAt: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)},
		// The hand codec never checked strings for UTF-8; such an entry must still read back.
		{destination: "dest\xff", payload: payload, createdAt: created, key: "key\xfe"},
	}
	for _, in := range cases {
		old, err := oldEncodeEnvelope(in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeEnvelope(old)
		if err != nil {
			t.Fatalf("decodeEnvelope(old bytes of %+v): %v", in, err)
		}
		if !sameEnvelope(got, in) {
			t.Errorf("old bytes of %+v decode to %+v", in, got)
		}
		v, err := encodeEnvelope(in)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(v, old) {
			t.Errorf("encodeEnvelope(%+v) = %x, the hand codec wrote %x", in, v, old)
		}
		for name, decode := range map[string]func([]byte) (envelope, error){"new": decodeEnvelope, "old": oldDecodeEnvelope} {
			got, err := decode(v)
			if err != nil || !sameEnvelope(got, in) {
				t.Errorf("%s decoder on new bytes of %+v: %+v, %v", name, in, got, err)
			}
		}
	}

	fixture, err := hex.DecodeString(goldenEnvelopeHex)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeEnvelope(fixture)
	if err != nil {
		t.Fatal(err)
	}
	if !sameEnvelope(got, cases[1]) {
		t.Errorf("golden fixture decodes to %+v, want %+v", got, cases[1])
	}
	if v, _ := encodeEnvelope(cases[1]); !bytes.Equal(v, fixture) {
		t.Errorf("encodeEnvelope(%+v) = %x, golden fixture %x", cases[1], v, fixture)
	}

	// Unknown fields (a later version's) and a field of the wrong wire type are skipped, as the
	// hand decoder skipped them.
	extra := protowire.AppendTag(append([]byte(nil), fixture...), 99, protowire.VarintType)
	extra = protowire.AppendVarint(extra, 7)
	extra = protowire.AppendTag(extra, 4, protowire.BytesType) // attempts, but not a varint
	extra = protowire.AppendString(extra, "x")
	for name, decode := range map[string]func([]byte) (envelope, error){"new": decodeEnvelope, "old": oldDecodeEnvelope} {
		if got, err := decode(extra); err != nil || !sameEnvelope(got, cases[1]) {
			t.Errorf("%s decoder with unknown fields: %+v, %v", name, got, err)
		}
	}
}

// goldenQuarantinedHex is a quarantined entry as stored while QuarantinedEntry.code was an
// int32 (before it became a google.rpc.Code): entry id "gz-7", destination "coordination",
// reason NOT_PAIRED, code 9 (FAILED_PRECONDITION), state QUARANTINED, written by the generated
// code of that time.
const goldenQuarantinedHex = "0a1771756172616e74696e6564456e74726965732f677a2d371204677a2d371a0c636f6f7264696e6174696f6e30093a0a4e4f545f5041495245446001"

// TestQuarantinedCodeWireCompatible: QuarantinedEntry.code and ItemRefusal.code became
// google.rpc.Code with the same field numbers. An enum and an int32 share the varint encoding,
// so entries quarantined before (and remembered responses holding item refusals) read the same
// code, and what is written now is what the int32 wrote.
func TestQuarantinedCodeWireCompatible(t *testing.T) {
	old, err := hex.DecodeString(goldenQuarantinedHex)
	if err != nil {
		t.Fatal(err)
	}
	q := &outboxv1.QuarantinedEntry{}
	if err := proto.Unmarshal(old, q); err != nil {
		t.Fatal(err)
	}
	if q.GetCode() != code.Code_FAILED_PRECONDITION || q.GetEntryId() != "gz-7" || q.GetReason() != "NOT_PAIRED" ||
		q.GetState() != outboxv1.QuarantineState_QUARANTINE_STATE_QUARANTINED {
		t.Fatalf("old entry reads as %v", q)
	}
	if v, err := (proto.MarshalOptions{Deterministic: true}).Marshal(q); err != nil || !bytes.Equal(v, old) {
		t.Fatalf("re-encoded %x, %v; stored %x", v, err, old)
	}

	// Every code an int32 could hold reads back as that number, also one no enum value names
	// (a client treats it as UNKNOWN and shows the number).
	for _, n := range []int64{0, 3, 9, 16, 17, 1000, -1} {
		var int32Field []byte
		int32Field = protowire.AppendTag(int32Field, 6, protowire.VarintType)
		int32Field = protowire.AppendVarint(int32Field, uint64(n)) // how an int32 field encodes n
		q := &outboxv1.QuarantinedEntry{}
		if err := proto.Unmarshal(int32Field, q); err != nil || int64(q.GetCode()) != n {
			t.Errorf("QuarantinedEntry code %d reads as %d, %v", n, q.GetCode(), err)
		}
		r := &commonv1.ItemRefusal{}
		refusal := protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), uint64(n))
		if err := proto.Unmarshal(refusal, r); err != nil || int64(r.GetCode()) != n {
			t.Errorf("ItemRefusal code %d reads as %d, %v", n, r.GetCode(), err)
		}
		if v, _ := proto.Marshal(r); n != 0 && !bytes.Equal(v, refusal) {
			t.Errorf("ItemRefusal code %d encodes as %x, the int32 wrote %x", n, v, refusal)
		}
	}
}
