package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The hand protowire codec of the idempotency record as it was before
// labourlink.storage.v1.RememberedResponse, copied verbatim (renamed): records in existing data
// files were written by oldEncodeRemembered.

const (
	oldRememberedResponse    protowire.Number = 1
	oldRememberedStoredAt    protowire.Number = 2
	oldRememberedFingerprint protowire.Number = 3
)

func oldEncodeRemembered(resp proto.Message, fp []byte, at time.Time) ([]byte, error) {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, resp, marshalOpts); err != nil {
		return nil, err
	}
	ab, err := marshalOpts.Marshal(a)
	if err != nil {
		return nil, err
	}
	tb, err := marshalOpts.Marshal(timestamppb.New(at))
	if err != nil {
		return nil, err
	}
	var out []byte
	out = protowire.AppendTag(out, oldRememberedResponse, protowire.BytesType)
	out = protowire.AppendBytes(out, ab)
	out = protowire.AppendTag(out, oldRememberedStoredAt, protowire.BytesType)
	out = protowire.AppendBytes(out, tb)
	out = protowire.AppendTag(out, oldRememberedFingerprint, protowire.BytesType)
	out = protowire.AppendBytes(out, fp)
	return out, nil
}

func oldDecodeRemembered(v []byte) (remembered, error) {
	a := &anypb.Any{}
	ts := &timestamppb.Timestamp{}
	var fp []byte
	for len(v) > 0 {
		num, typ, n := protowire.ConsumeTag(v)
		if n < 0 {
			return remembered{}, protowire.ParseError(n)
		}
		v = v[n:]
		known := num == oldRememberedResponse || num == oldRememberedStoredAt || num == oldRememberedFingerprint
		if typ != protowire.BytesType || !known {
			n = protowire.ConsumeFieldValue(num, typ, v)
			if n < 0 {
				return remembered{}, protowire.ParseError(n)
			}
			v = v[n:]
			continue
		}
		b, n := protowire.ConsumeBytes(v)
		if n < 0 {
			return remembered{}, protowire.ParseError(n)
		}
		v = v[n:]
		if num == oldRememberedFingerprint {
			fp = append([]byte(nil), b...)
			continue
		}
		var m proto.Message = a
		if num == oldRememberedStoredAt {
			m = ts
		}
		if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(b, m); err != nil {
			return remembered{}, err
		}
	}
	if a.GetTypeUrl() == "" {
		return remembered{}, errors.New("no response recorded")
	}
	return remembered{response: a, storedAt: ts.AsTime(), fingerprint: fp}, nil
}

func sameRemembered(a, b remembered) bool {
	return proto.Equal(a.response, b.response) && a.storedAt.Equal(b.storedAt) &&
		bytes.Equal(a.fingerprint, b.fingerprint) && (a.fingerprint == nil) == (b.fingerprint == nil)
}

// goldenRememberedHex was written by oldEncodeRemembered for the first case of
// TestRememberedGolden before the hand codec was deleted.
const goldenRememberedHex = "0a410a2f747970652e676f6f676c65617069732e636f6d2f676f6f676c652e70726f746f6275662e537472696e6756616c7565120e0a0c666972737420616e73776572120b0888f28fcd0610959aef3a1a20af0bf2a562dabe2a81e0b0b47a33a515b5e8495c72fff218af4c15f3f066fa44"

// TestRememberedGolden: records written by the hand codec read back the same through
// storagev1.RememberedResponse, and the message writes the very same bytes.
func TestRememberedGolden(t *testing.T) {
	sum := sha256.Sum256([]byte("a request"))
	at := time.Date(2026, 3, 1, 8, 30, 0, 123456789, time.UTC)
	cases := []struct {
		resp proto.Message
		fp   []byte
		at   time.Time
	}{
		{wrapperspb.String("first answer"), sum[:], at},
		{&wrapperspb.Int64Value{}, sum[:], time.Unix(0, 0).UTC()}, // empty response message
		{wrapperspb.Bytes([]byte{0, 0xff}), sum[:], time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)},
		{wrapperspb.String("before fingerprints"), nil, at}, // written with an empty fingerprint
	}
	for _, c := range cases {
		a, err := anypb.New(c.resp)
		if err != nil {
			t.Fatal(err)
		}
		want := remembered{response: a, storedAt: c.at, fingerprint: c.fp}
		old, err := oldEncodeRemembered(c.resp, c.fp, c.at)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeRemembered(old)
		if err != nil || !sameRemembered(got, want) {
			t.Errorf("old bytes of %v decode to %+v, %v; want %+v", c.resp, got, err, want)
		}
		v, err := encodeRemembered(c.resp, c.fp, c.at)
		if err != nil {
			t.Fatal(err)
		}
		// The hand encoder wrote an empty fingerprint as an empty field; the message leaves it
		// out. Both read back as no fingerprint.
		if len(c.fp) > 0 && !bytes.Equal(v, old) {
			t.Errorf("encodeRemembered(%v) = %x, the hand codec wrote %x", c.resp, v, old)
		}
		for name, decode := range map[string]func([]byte) (remembered, error){"new": decodeRemembered, "old": oldDecodeRemembered} {
			if got, err := decode(v); err != nil || !sameRemembered(got, want) {
				t.Errorf("%s decoder on new bytes of %v: %+v, %v", name, c.resp, got, err)
			}
		}
	}

	fixture, err := hex.DecodeString(goldenRememberedHex)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := anypb.New(cases[0].resp)
	want := remembered{response: a, storedAt: at, fingerprint: sum[:]}
	if got, err := decodeRemembered(fixture); err != nil || !sameRemembered(got, want) {
		t.Errorf("golden fixture decodes to %+v, %v; want %+v", got, err, want)
	}
	if v, _ := encodeRemembered(cases[0].resp, sum[:], at); !bytes.Equal(v, fixture) {
		t.Errorf("encodeRemembered = %x, golden fixture %x", v, fixture)
	}

	// A record of the first version, without a fingerprint field, has none; unknown fields and
	// a known field of the wrong wire type are skipped.
	noFP := fixture[:len(fixture)-2-sha256.Size]
	noFP = protowire.AppendTag(noFP, 99, protowire.VarintType)
	noFP = protowire.AppendVarint(noFP, 1)
	noFP = protowire.AppendTag(noFP, oldRememberedFingerprint, protowire.VarintType)
	noFP = protowire.AppendVarint(noFP, 5)
	wantNoFP := remembered{response: a, storedAt: at}
	for name, decode := range map[string]func([]byte) (remembered, error){"new": decodeRemembered, "old": oldDecodeRemembered} {
		if got, err := decode(noFP); err != nil || !sameRemembered(got, wantNoFP) {
			t.Errorf("%s decoder on a record without fingerprint: %+v, %v", name, got, err)
		}
	}
	for _, bad := range [][]byte{{0x0a, 0x05, 'a'}, {0x12, 0x00}, {0xff}} {
		if _, err := decodeRemembered(bad); err == nil {
			t.Errorf("decodeRemembered(%x) succeeded", bad)
		}
	}
}
