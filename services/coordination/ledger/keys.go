package ledger

import (
	"bytes"
	"encoding/binary"
	"time"

	"github.com/eastwest/labourlink/services/platform/store"
)

// Keys of the ledger's buckets: storage layout, kept byte for byte from the files written before
// this package existed (keys_test.go pins them). Ids (event, worker, batch) never contain a NUL
// byte (validation refuses control characters), so NUL separates an id from what follows it and
// keeps prefix scans exact. Every key has its decoder here, and a key decodes to the values it
// was encoded from.
//
//	events              seq(8)                                            store.Uint64Key
//	event ids           event_id                   -> seq(8)
//	by worker, by batch id NUL seq(8)                                     idKey
//	by pairing          receiving(6) sending(6) category(1) time(8) worker pairingKey
//	assessment          province(6) year(2) category(1) worker            assessmentKey
//	deadlines           deadline(8) batch                                 deadlineKey
//	discrepancies       batch NUL worker NUL kind(1)                      discrepancyKey
//	batches             batch

// Categories of counted events (pairing summaries and assessment), as stored in keys.
const (
	catDeparted     byte = 1
	catArrived      byte = 2
	catNoShow       byte = 3
	catOnboarded    byte = 4
	catEmployed3    byte = 5
	catEmployed6    byte = 6
	catLeftJob      byte = 7
	catReturnedHome byte = 8
)

// idKey is id NUL seq(8).
func idKey(id string, seq uint64) []byte {
	k := make([]byte, 0, len(id)+9)
	k = append(k, id...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

// idPrefix is id NUL: the prefix of the id's keys.
func idPrefix(id string) []byte {
	return append([]byte(id), 0)
}

// parseIDKey decodes an idKey.
func parseIDKey(k []byte) (id string, seq uint64, ok bool) {
	if len(k) < 9 || k[len(k)-9] != 0 || bytes.IndexByte(k[:len(k)-9], 0) >= 0 {
		return "", 0, false
	}
	return string(k[:len(k)-9]), store.KeyUint64(k[len(k)-8:]), true
}

// timeKey encodes t for keys: nanoseconds since 1970, big-endian (validation keeps ledger times
// between 2000 and 2200, so the value is positive and fits).
func timeKey(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(t.UnixNano()))
}

// keyTime decodes a timeKey (in UTC).
func keyTime(b []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(b))).UTC()
}

// pairingPrefix is receiving(6) sending(6).
func pairingPrefix(receiving, sending string) []byte {
	k := make([]byte, 0, 12)
	return append(append(k, receiving...), sending...)
}

// pairingCategoryPrefix is receiving(6) sending(6) category(1).
func pairingCategoryPrefix(receiving, sending string, cat byte) []byte {
	k := make([]byte, 0, len(receiving)+len(sending)+1)
	return append(append(append(k, receiving...), sending...), cat)
}

// pairingKey is receiving(6) sending(6) category(1) time(8) worker.
func pairingKey(receiving, sending string, cat byte, t time.Time, worker string) []byte {
	k := make([]byte, 0, len(receiving)+len(sending)+1+8+len(worker))
	k = append(append(append(k, receiving...), sending...), cat)
	return append(binary.BigEndian.AppendUint64(k, uint64(t.UnixNano())), worker...)
}

// pairingIndexKey is a decoded pairingKey.
type pairingIndexKey struct {
	receiving, sending string
	cat                byte
	time               time.Time
	worker             string
}

// parsePairingKey decodes a pairingKey.
func parsePairingKey(k []byte) (pairingIndexKey, bool) {
	if len(k) < 21 {
		return pairingIndexKey{}, false
	}
	return pairingIndexKey{
		receiving: string(k[:6]), sending: string(k[6:12]), cat: k[12],
		time: keyTime(k[13:21]), worker: string(k[21:]),
	}, true
}

// assessmentPrefix is province(6) year(2) category(1).
func assessmentPrefix(province string, year int, cat byte) []byte {
	k := make([]byte, 0, 9+32)
	k = append(k, province...)
	k = binary.BigEndian.AppendUint16(k, uint16(year))
	return append(k, cat)
}

// assessmentKey is province(6) year(2) category(1) worker.
func assessmentKey(province string, year int, cat byte, worker string) []byte {
	return append(assessmentPrefix(province, year, cat), worker...)
}

// parseAssessmentKey decodes an assessmentKey.
func parseAssessmentKey(k []byte) (province string, year int, cat byte, worker string, ok bool) {
	if len(k) < 9 {
		return "", 0, 0, "", false
	}
	return string(k[:6]), int(binary.BigEndian.Uint16(k[6:8])), k[8], string(k[9:]), true
}

// deadlineKey is deadline(8) batch.
func deadlineKey(deadline time.Time, batch string) []byte {
	return append(timeKey(deadline), batch...)
}

// parseDeadlineKey decodes a deadlineKey.
func parseDeadlineKey(k []byte) (deadline time.Time, batch string, ok bool) {
	if len(k) < 8 {
		return time.Time{}, "", false
	}
	return keyTime(k[:8]), string(k[8:]), true
}

// discrepancyKey is batch NUL worker NUL kind(1): the (batch, worker, kind) order of
// ListDiscrepancies.
func discrepancyKey(batch, worker string, kind byte) []byte {
	k := make([]byte, 0, len(batch)+len(worker)+3)
	k = append(k, batch...)
	k = append(k, 0)
	k = append(k, worker...)
	k = append(k, 0)
	return append(k, kind)
}

// parseDiscrepancyKey decodes a discrepancyKey.
func parseDiscrepancyKey(k []byte) (batch, worker string, kind byte, ok bool) {
	parts := bytes.Split(k, []byte{0})
	if len(parts) != 3 || len(parts[2]) != 1 {
		return "", "", 0, false
	}
	return string(parts[0]), string(parts[1]), parts[2][0], true
}
