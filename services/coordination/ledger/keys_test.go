package ledger

import (
	"bytes"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/platform/store"
)

// The keys are storage layout: files written before must read the same. These are the bytes
// the keys had before they moved here.
func TestKeysByteForByte(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 1, 8, 0, 0, 0, civil.Zone)             // 2025-03-01 00:00 UTC
	atKey := []byte{0x18, 0x28, 0x84, 0xbc, 0x3d, 0x8c, 0x00, 0x00} // 1740787200e9 ns
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"time", timeKey(at), atKey},
		{"id", idKey("w1", 258), []byte("w1\x00\x00\x00\x00\x00\x00\x00\x01\x02")},
		{"id prefix", idPrefix("B1"), []byte("B1\x00")},
		{"pairing", pairingKey("440000", "520000", catArrived, at, "w1"), append(append([]byte("440000520000\x02"), atKey...), "w1"...)},
		{"pairing prefix", pairingPrefix("440000", "520000"), []byte("440000520000")},
		{"assessment", assessmentKey("520000", 2025, catDeparted, "w1"), []byte("520000\x07\xe9\x01w1")},
		{"assessment prefix", assessmentPrefix("440000", 2024, catOnboarded), []byte("440000\x07\xe8\x04")},
		{"deadline", deadlineKey(at, "B1"), append(bytes.Clone(atKey), "B1"...)},
		{"discrepancy", discrepancyKey("B1", "w1", 3), []byte("B1\x00w1\x00\x03")},
	}
	for _, tt := range tests {
		if !bytes.Equal(tt.got, tt.want) {
			t.Errorf("%s key %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	// The sequence keys of the events bucket are the store's.
	if k := store.Uint64Key(258); !bytes.Equal(k, []byte{0, 0, 0, 0, 0, 0, 1, 2}) {
		t.Errorf("sequence key %q", k)
	}
}

// idGen draws ids as validation accepts them (printable ASCII without space or '/').
func idGen() *rapid.Generator[string] {
	return rapid.StringMatching(`[!-.0-~]{1,20}`)
}

// timeGen draws ledger times (2000 to 2200, nanoseconds).
func timeGen() *rapid.Generator[time.Time] {
	return rapid.Custom(func(t *rapid.T) time.Time {
		lo, hi := EarliestOccur.UnixNano(), LatestOccur.UnixNano()-1
		return time.Unix(0, rapid.Int64Range(lo, hi).Draw(t, "ns"))
	})
}

var codeGen = rapid.StringMatching(`[0-9]{6}`)

// Every key decodes to the values it was encoded from, and keys of different values differ.
func TestKeysRoundTrip(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		id, seq := idGen().Draw(t, "id"), rapid.Uint64().Draw(t, "seq")
		if gotID, gotSeq, ok := parseIDKey(idKey(id, seq)); !ok || gotID != id || gotSeq != seq {
			t.Fatalf("id key of (%q, %d) decodes to (%q, %d, %v)", id, seq, gotID, gotSeq, ok)
		}
		if !bytes.HasPrefix(idKey(id, seq), idPrefix(id)) {
			t.Fatalf("id key of %q outside its prefix", id)
		}

		at := timeGen().Draw(t, "time")
		if got := keyTime(timeKey(at)); !got.Equal(at) {
			t.Fatalf("time %v decodes to %v", at, got)
		}
		at2 := timeGen().Draw(t, "time2")
		if c := bytes.Compare(timeKey(at), timeKey(at2)); c != at.Compare(at2) {
			t.Fatalf("time keys of %v and %v compare %d, the times %d", at, at2, c, at.Compare(at2))
		}

		recv, send, worker := codeGen.Draw(t, "receiving"), codeGen.Draw(t, "sending"), idGen().Draw(t, "worker")
		cat := rapid.ByteRange(catDeparted, catReturnedHome).Draw(t, "category")
		pk, ok := parsePairingKey(pairingKey(recv, send, cat, at, worker))
		if !ok || pk.receiving != recv || pk.sending != send || pk.cat != cat || !pk.time.Equal(at) || pk.worker != worker {
			t.Fatalf("pairing key decodes to %+v, %v", pk, ok)
		}
		if !bytes.HasPrefix(pairingKey(recv, send, cat, at, worker), pairingCategoryPrefix(recv, send, cat)) {
			t.Fatal("pairing key outside its prefix")
		}

		year := rapid.IntRange(2000, 2199).Draw(t, "year")
		p, y, c, w, ok := parseAssessmentKey(assessmentKey(recv, year, cat, worker))
		if !ok || p != recv || y != year || c != cat || w != worker {
			t.Fatalf("assessment key decodes to (%q, %d, %d, %q, %v)", p, y, c, w, ok)
		}

		batch := idGen().Draw(t, "batch")
		d, b, ok := parseDeadlineKey(deadlineKey(at, batch))
		if !ok || !d.Equal(at) || b != batch {
			t.Fatalf("deadline key decodes to (%v, %q, %v)", d, b, ok)
		}

		kind := rapid.ByteRange(1, 4).Draw(t, "kind")
		b, w, k, ok := parseDiscrepancyKey(discrepancyKey(batch, worker, kind))
		if !ok || b != batch || w != worker || k != kind {
			t.Fatalf("discrepancy key decodes to (%q, %q, %d, %v)", b, w, k, ok)
		}
		if !discrepancyKeyOf(batch)(discrepancyKey(batch, worker, kind)) || !discrepancyKeyOf("")(discrepancyKey(batch, worker, kind)) {
			t.Fatal("a discrepancy key is not a ListDiscrepancies token key")
		}
	})
}

// Keys that are not of a shape do not decode.
func TestKeysRefuseOtherShapes(t *testing.T) {
	t.Parallel()
	if _, _, ok := parseIDKey([]byte("w1\x00\x01")); ok {
		t.Error("a short id key decoded")
	}
	if _, _, ok := parseIDKey([]byte("w\x001\x00\x00\x00\x00\x00\x00\x00\x01")); ok {
		t.Error("an id key with NUL in the id decoded")
	}
	if _, ok := parsePairingKey([]byte("440000520000\x01")); ok {
		t.Error("a pairing key without time decoded")
	}
	if _, _, _, _, ok := parseAssessmentKey([]byte("520000")); ok {
		t.Error("a short assessment key decoded")
	}
	if _, _, ok := parseDeadlineKey([]byte("B1")); ok {
		t.Error("a short deadline key decoded")
	}
	for _, k := range []string{"B1\x00w1", "B1\x00w1\x00\x01\x02", "B1\x00w1\x00x\x00\x01"} {
		if _, _, _, ok := parseDiscrepancyKey([]byte(k)); ok {
			t.Errorf("discrepancy key %q decoded", k)
		}
	}
	if discrepancyKeyOf("B2")(discrepancyKey("B1", "w1", 1)) {
		t.Error("a token key of batch B1 accepted for batch B2")
	}
}
