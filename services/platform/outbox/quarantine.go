package outbox

import (
	"fmt"
	"strings"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	outboxv1 "github.com/eastwest/labourlink/proto/labourlink/outbox/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/store"
)

// The quarantine: store.BucketOutboxQuarantine, store.Uint64Key(seq of the refused entry) ->
// outboxv1.QuarantinedEntry with its payload, so that keys (and a listing) follow the order the
// messages were committed. Entries stay after an operator's decision, with the decision, for the
// record. (The stored message is the API's own: a storage-only schema is for the storage-layer
// work.)

const (
	stateQuarantined = outboxv1.QuarantineState_QUARANTINE_STATE_QUARANTINED
	stateRetried     = outboxv1.QuarantineState_QUARANTINE_STATE_RETRIED
	stateDiscarded   = outboxv1.QuarantineState_QUARANTINE_STATE_DISCARDED
)

// quarantineCollection is the collection of QuarantinedEntry resource names.
const quarantineCollection = "quarantinedEntries"

// quarantine stores the refused entry e in tx.
func quarantine(tx *bbolt.Tx, e Entry, why Refusal, summary string, now time.Time) error {
	b, err := tx.CreateBucketIfNotExists(store.BucketOutboxQuarantine)
	if err != nil {
		return fmt.Errorf("outbox quarantine: %w", err)
	}
	q := &outboxv1.QuarantinedEntry{
		Name:           quarantineCollection + "/" + e.ID,
		EntryId:        e.ID,
		Destination:    e.Destination,
		Type:           typeName(e.Payload.GetTypeUrl()),
		Summary:        summary,
		Code:           code.Code(why.Code),
		Reason:         why.Reason,
		Message:        clip(why.Message, 2000),
		CreateTime:     timestamppb.New(e.CreatedAt),
		QuarantineTime: timestamppb.New(now),
		Attempts:       e.Attempts,
		State:          stateQuarantined,
		Payload:        e.Payload,
		OrderingKey:    e.Key,
	}
	return store.PutProto(b, store.Uint64Key(e.Seq), q)
}

// quarantineKey returns the bucket key of the quarantined entry with id "<prefix>-<seq>".
func quarantineKey(entryID string) ([]byte, bool) {
	i := strings.LastIndexByte(entryID, '-')
	if i < 0 {
		return nil, false
	}
	var seq uint64
	if _, err := fmt.Sscan(entryID[i+1:], &seq); err != nil || seq == 0 {
		return nil, false
	}
	return store.Uint64Key(seq), true
}

// getQuarantined reads the quarantined entry of resource name; NotFound when there is none.
func getQuarantined(tx *bbolt.Tx, name string) ([]byte, *outboxv1.QuarantinedEntry, error) {
	id := strings.TrimPrefix(name, quarantineCollection+"/")
	key, ok := quarantineKey(id)
	b := tx.Bucket(store.BucketOutboxQuarantine)
	if !ok || b == nil {
		return nil, nil, apierror.NotFound("no quarantined entry %s", name)
	}
	q := &outboxv1.QuarantinedEntry{}
	found, err := store.GetProto(b, key, q)
	if err != nil {
		return nil, nil, err
	}
	if !found || q.GetEntryId() != id {
		return nil, nil, apierror.NotFound("no quarantined entry %s", name)
	}
	return key, q, nil
}

// errDecided is returned for a decision on an entry that was decided already.
func errDecided(q *outboxv1.QuarantinedEntry) error {
	return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_ALREADY_DECIDED, "quarantined entry %s was %s already", q.GetName(),
		strings.ToLower(strings.TrimPrefix(q.GetState().String(), "QUARANTINE_STATE_")))
}

// retryQuarantined puts the message of a quarantined entry back at the end of its destination's
// queue, under a new entry (and so a new id), and records the decision.
func retryQuarantined(tx *bbolt.Tx, name string, d *outboxv1.QuarantineDecision, prefix string) (*outboxv1.QuarantinedEntry, uint64, error) {
	key, q, err := getQuarantined(tx, name)
	if err != nil {
		return nil, 0, err
	}
	if q.GetState() != stateQuarantined {
		return nil, 0, errDecided(q)
	}
	seq, err := putEnvelope(tx, envelope{destination: q.GetDestination(), key: q.GetOrderingKey(), payload: q.GetPayload(), createdAt: d.GetDecideTime().AsTime()})
	if err != nil {
		return nil, 0, err
	}
	q.State = stateRetried
	q.RetriedAs = entryID(prefix, seq)
	q.Decisions = append(q.Decisions, d)
	if err := store.PutProto(tx.Bucket(store.BucketOutboxQuarantine), key, q); err != nil {
		return nil, 0, err
	}
	return q, seq, nil
}

// discardQuarantined records that the message of a quarantined entry is given up.
func discardQuarantined(tx *bbolt.Tx, name string, d *outboxv1.QuarantineDecision) (*outboxv1.QuarantinedEntry, error) {
	key, q, err := getQuarantined(tx, name)
	if err != nil {
		return nil, err
	}
	if q.GetState() != stateQuarantined {
		return nil, errDecided(q)
	}
	q.State = stateDiscarded
	q.Decisions = append(q.Decisions, d)
	if err := store.PutProto(tx.Bucket(store.BucketOutboxQuarantine), key, q); err != nil {
		return nil, err
	}
	return q, nil
}

// Quarantined returns the number of entries of destination waiting in the quarantine for a
// decision ("" for all destinations).
func Quarantined(db *store.DB, destination string) (int, error) {
	n := 0
	err := db.View(func(tx *bbolt.Tx) error {
		return eachQuarantined(tx, nil, func(_ []byte, q *outboxv1.QuarantinedEntry) (bool, error) {
			if q.GetState() == stateQuarantined && (destination == "" || q.GetDestination() == destination) {
				n++
			}
			return true, nil
		})
	})
	return n, err
}

// eachQuarantined calls fn for the quarantined entries after key after (nil: from the first),
// in key order, until fn returns false.
func eachQuarantined(tx *bbolt.Tx, after []byte, fn func(k []byte, q *outboxv1.QuarantinedEntry) (bool, error)) error {
	b := tx.Bucket(store.BucketOutboxQuarantine)
	if b == nil {
		return nil
	}
	c := b.Cursor()
	var k, v []byte
	if after == nil {
		k, v = c.First()
	} else {
		k, v = c.Seek(after)
		if k != nil && string(k) == string(after) {
			k, v = c.Next()
		}
	}
	for ; k != nil; k, v = c.Next() {
		q := &outboxv1.QuarantinedEntry{}
		if err := proto.Unmarshal(v, q); err != nil {
			return fmt.Errorf("decode quarantined entry %d: %w", store.KeyUint64(k), err)
		}
		more, err := fn(k, q)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// typeName is the message type of a type URL ("type.googleapis.com/labourlink.x.v1.M" -> "labourlink.x.v1.M").
func typeName(url string) string {
	if i := strings.LastIndexByte(url, '/'); i >= 0 {
		return url[i+1:]
	}
	return url
}

// clip shortens s to at most n bytes at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
