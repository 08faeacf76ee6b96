package coordination

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/eastwest/labourlink/proto/labour/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labour/coordination/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/paging"
)

// Keys of the coordination buckets. Ids (event, worker, batch) never contain a NUL byte
// (validation refuses control characters), so NUL separates an id from what follows it and keeps
// prefix scans exact.

// chinaTime is China Standard Time (UTC+8, no daylight saving): years and dates of the ledger are
// counted in it.
var chinaTime = time.FixedZone("CST", 8*60*60)

// pageSize is the page size of every List call; a size above the maximum is refused.
var pageSize = paging.Size{Default: 100, Max: 1000}

// Page tokens (services/platform/paging) are bound to their List and the request's filters, and hold a
// key of the List's shape: garbage, a token of another List and one of other filters are refused
// before the handler instead of being read as a position.

func eventsListing(r *coordinationv1.ListEventsRequest) paging.Listing {
	return paging.For("events", r.GetWorkerId(), r.GetBatchId(), r.GetKind().String(), r.GetRegion()).Keys(isSeqKey)
}

func batchReconciliationsListing(r *coordinationv1.ListBatchReconciliationsRequest) paging.Listing {
	return paging.For("batch reconciliations", r.GetReceivingRegion(), r.GetSendingRegion()).Keys(isBatchKey)
}

func discrepanciesListing(r *coordinationv1.ListDiscrepanciesRequest) paging.Listing {
	return paging.For("discrepancies", r.GetBatchId(), r.GetRegion(), r.GetKind().String(), fmt.Sprint(r.GetIncludeClosed())).
		Keys(discrepancyKeyOf(r.GetBatchId()))
}

func regionsListing(r *coordinationv1.ListRegionsRequest) paging.Listing {
	return paging.For("regions", r.GetRole().String()).Keys(isRegionKey)
}

func pairingsListing(r *coordinationv1.ListPairingsRequest) paging.Listing {
	return paging.For("pairings", r.GetRegion()).Keys(isPairingKey)
}

// Key shapes of the List calls' page tokens.

// isSeqKey: ListEvents, a sequence number.
func isSeqKey(k []byte) bool { return len(k) == 8 }

// isRegionKey: ListRegions, a 6-digit region code.
func isRegionKey(k []byte) bool { return isCode(k) }

// isPairingKey: ListPairings, receiving-sending ("440000-520000").
func isPairingKey(k []byte) bool {
	recv, send, ok := bytes.Cut(k, []byte("-"))
	return ok && isCode(recv) && isCode(send)
}

// isBatchKey: ListBatchReconciliations, a batch id.
func isBatchKey(k []byte) bool { return isIDKey(k) }

// discrepancyKeyOf returns the check of a ListDiscrepancies token (batch NUL worker NUL kind),
// which with a batch filter must be of that batch.
func discrepancyKeyOf(batch string) func([]byte) bool {
	return func(k []byte) bool {
		parts := bytes.Split(k, []byte{0})
		if len(parts) != 3 || !isIDKey(parts[0]) || !isIDKey(parts[1]) || len(parts[2]) != 1 {
			return false
		}
		return batch == "" || string(parts[0]) == batch
	}
}

func isCode(k []byte) bool {
	if len(k) != 6 {
		return false
	}
	for _, c := range k {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isIDKey reports whether k is an id as checkID accepts them.
func isIDKey(k []byte) bool {
	if len(k) == 0 || len(k) > maxEventIDLen {
		return false
	}
	for _, c := range k {
		if c <= ' ' || c > '~' || c == '/' {
			return false
		}
	}
	return true
}

// seekAfter positions c at the first key after `after` (or at the first key with prefix when after
// is nil) and returns it.
func seekAfter(c *bbolt.Cursor, prefix, after []byte) ([]byte, []byte) {
	if after == nil {
		if len(prefix) == 0 {
			return c.First()
		}
		return c.Seek(prefix)
	}
	k, v := c.Seek(after)
	if k != nil && bytes.Equal(k, after) {
		k, v = c.Next()
	}
	return k, v
}

// idKey is id NUL seq.
func idKey(id string, seq uint64) []byte {
	k := make([]byte, 0, len(id)+9)
	k = append(k, id...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

// idPrefix is id NUL.
func idPrefix(id string) []byte {
	return append([]byte(id), 0)
}

// Categories of counted events (pairing summaries and assessment).
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

// timeKey encodes t for keys: nanoseconds since 1970, big-endian (validation keeps ledger times
// between 2000 and 2200, so the value is positive and fits).
func timeKey(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(t.UnixNano()))
}

func keyTime(b []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(b))).UTC()
}

// pairingPrefix is receiving(6) sending(6).
func pairingPrefix(receiving, sending string) []byte {
	k := make([]byte, 0, 12)
	return append(append(k, receiving...), sending...)
}

// pairingKey is receiving(6) sending(6) category(1) time(8) worker.
func pairingKey(receiving, sending string, cat byte, t time.Time, worker string) []byte {
	k := append(pairingPrefix(receiving, sending), cat)
	k = append(k, timeKey(t)...)
	return append(k, worker...)
}

// assessmentPrefix is province(6) year(2) category(1).
func assessmentPrefix(province string, year int, cat byte) []byte {
	k := make([]byte, 0, 9+32)
	k = append(k, province...)
	k = binary.BigEndian.AppendUint16(k, uint16(year))
	return append(k, cat)
}

// deadlineKey is deadline(8) batch.
func deadlineKey(deadline time.Time, batch string) []byte {
	return append(timeKey(deadline), batch...)
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

// cstYear is the calendar year of t in China Standard Time.
func cstYear(t time.Time) int { return t.In(chinaTime).Year() }

// dayStart returns 00:00 CST of d.
func dayStart(d *commonv1.Date) time.Time {
	return time.Date(int(d.GetYear()), time.Month(d.GetMonth()), int(d.GetDay()), 0, 0, 0, 0, chinaTime)
}

// checkDate adds a violation unless d is a real calendar date (or unset when optional).
func checkDate(v *apierror.Violations, field string, d *commonv1.Date) {
	if d == nil {
		return
	}
	y, m, day := int(d.GetYear()), int(d.GetMonth()), int(d.GetDay())
	if y < 1900 || y > 9999 || m < 1 || m > 12 || day < 1 {
		v.Add(field, "must be a real date (year 1900-9999, month 1-12, day 1-31)")
		return
	}
	t := time.Date(y, time.Month(m), day, 0, 0, 0, 0, time.UTC)
	if t.Day() != day {
		v.Add(field, fmt.Sprintf("%04d-%02d-%02d is not a real date", y, m, day))
	}
}

// formatCST renders t as a CST minute, for details people read.
func formatCST(t time.Time) string { return t.In(chinaTime).Format("2006-01-02 15:04 CST") }

// putEmpty stores an index key with an empty value.
func putEmpty(b *bbolt.Bucket, k []byte) error { return b.Put(k, []byte{}) }

// unmarshal decodes a stored value into m (copying out of the transaction's memory).
func unmarshal(v []byte, m proto.Message) error {
	if err := proto.Unmarshal(v, m); err != nil {
		return fmt.Errorf("decode stored %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return nil
}
