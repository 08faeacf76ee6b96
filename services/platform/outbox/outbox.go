// Package outbox is a transactional outbox: a service stores a message for a
// peer in the same bbolt transaction as the change that caused it (Put), and
// a Relay delivers stored messages, retrying with backoff until the peer
// answers. A message committed to the outbox is never lost while the peer is
// down; it may be delivered more than once (after a crash between delivery
// and deletion), so receivers deduplicate by Entry.ID.
//
// Order: messages of one destination with the same ordering key are
// delivered in commit order, and one that fails holds back only the messages
// of its key; messages with other keys, or none, go on (no head-of-line
// stall of unrelated messages).
//
// Refusals: a message the peer refuses for good (Refusal) is moved to the
// destination's quarantine with the peer's reason, in the same transaction
// that removes it from the queue; it never blocks the messages behind it and
// is never dropped. An operator retries it (it goes back to the end of the
// queue under a new id) or discards it (Server, labourlink.outbox.v1).
//
// Layout: in the store.BucketOutbox bucket, one nested bucket per
// destination, keyed by store.Uint64Key(seq) where seq comes from the outbox
// bucket's own sequence (unique across destinations); quarantined messages in
// store.BucketOutboxQuarantine under the same key.
//
// Traces: Put stores the trace context of its ctx with the entry (OutboxEntry.trace_context, W3C
// Trace Context), and the relay delivers in a span "outbox.Deliver" that continues it, so the
// call to the peer, and what the peer does, are in the trace of the call that committed the
// message although they happen later, after retries or a restart. A delivery carries several
// entries at once: when they all come from one trace the delivery span is a child in it; when
// they come from several, it starts a trace of its own linked to each of theirs (span links).
// Either way it links every entry's span. An entry retried from the quarantine goes out
// untraced (the quarantine keeps the message, not its trace).
package outbox

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.etcd.io/bbolt"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	storagev1 "github.com/eastwest/labourlink/proto/labourlink/storage/v1"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/platform/tracing"
)

// Entry is one stored message.
type Entry struct {
	// Seq is the entry's sequence number, unique within the data file and
	// increasing in Put order.
	Seq uint64
	// ID is "<prefix>-<seq>", stable across restarts; receivers use it as the
	// request or event id to deduplicate.
	ID          string
	Destination string
	Payload     *anypb.Any
	CreatedAt   time.Time
	// Key is the ordering key given to Put ("" for none).
	Key string
	// Attempts is the number of failed deliveries so far.
	Attempts uint32
	// Trace is the span context of the call that put the entry (invalid when it was not traced).
	Trace trace.SpanContext
}

// UnmarshalPayload unmarshals the payload into m, which must be of the type
// given to Put.
func (e Entry) UnmarshalPayload(m proto.Message) error {
	return e.Payload.UnmarshalTo(m)
}

// Put stores payload for destination in tx, which must be read-write, and
// returns the entry's sequence number; at is when it was queued (the service's clock), ctx the
// call that caused it, whose trace context is stored with the entry (see Traces in the package
// comment; a background job without a call gives its own context, or context.Background()).
// The entry exists only if tx commits.
// Call Relay.Notify after the commit to deliver it without waiting.
//
// key orders the entry: entries of one destination with the same non-empty
// key are delivered in Put order, and a failed one holds back the later ones
// of its key only. Give the key of what the message is about when a later
// message depends on it (a batch's announcement and then its departure);
// give "" for a message that depends on no other (a ledger event).
func Put(ctx context.Context, tx *bbolt.Tx, at time.Time, destination, key string, payload proto.Message) (uint64, error) {
	if destination == "" {
		return 0, errors.New("outbox: empty destination")
	}
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, payload, proto.MarshalOptions{Deterministic: true}); err != nil {
		return 0, fmt.Errorf("outbox %s: encode payload: %w", destination, err)
	}
	return putEnvelope(tx, envelope{destination: destination, key: key, payload: a, createdAt: at, trace: tracing.Carrier(ctx)})
}

// putEnvelope stores e at the end of its destination's queue.
func putEnvelope(tx *bbolt.Tx, e envelope) (uint64, error) {
	top, err := tx.CreateBucketIfNotExists(store.BucketOutbox)
	if err != nil {
		return 0, fmt.Errorf("outbox: %w", err)
	}
	b, err := top.CreateBucketIfNotExists([]byte(e.destination))
	if err != nil {
		return 0, fmt.Errorf("outbox %s: %w", e.destination, err)
	}
	seq, err := store.NextSeq(top)
	if err != nil {
		return 0, fmt.Errorf("outbox %s: %w", e.destination, err)
	}
	v, err := encodeEnvelope(e)
	if err != nil {
		return 0, fmt.Errorf("outbox %s: %w", e.destination, err)
	}
	if err := b.Put(store.Uint64Key(seq), v); err != nil {
		return 0, fmt.Errorf("outbox %s: %w", e.destination, err)
	}
	return seq, nil
}

// Pending returns the number of entries stored for destination.
func Pending(db *store.DB, destination string) (int, error) {
	n := 0
	err := db.View(func(tx *bbolt.Tx) error {
		b := destBucket(tx, destination)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			n++
		}
		return nil
	})
	return n, err
}

func destBucket(tx *bbolt.Tx, destination string) *bbolt.Bucket {
	top := tx.Bucket(store.BucketOutbox)
	if top == nil {
		return nil
	}
	return top.Bucket([]byte(destination))
}

func entryID(prefix string, seq uint64) string {
	return prefix + "-" + strconv.FormatUint(seq, 10)
}

// envelope is the stored value of an entry: a labourlink.storage.v1.OutboxEntry
// (storagev1.OutboxEntry), the storage-only record of this package. Until
// that message was defined it was encoded by hand with protowire; the message
// keeps those field numbers and types, so entries written then read back the
// same (TestEnvelopeGolden).
type envelope struct {
	destination string
	key         string
	payload     *anypb.Any
	createdAt   time.Time
	attempts    uint32
	trace       map[string]string // tracing.Carrier
}

func encodeEnvelope(e envelope) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(&storagev1.OutboxEntry{
		Destination:  e.destination,
		Payload:      e.payload,
		CreatedAt:    timestamppb.New(e.createdAt),
		Attempts:     e.attempts,
		Key:          e.key,
		TraceContext: e.trace,
	})
}

// decodeEnvelope decodes v; the result does not alias v.
func decodeEnvelope(v []byte) (envelope, error) {
	var m storagev1.OutboxEntry
	if err := proto.Unmarshal(v, &m); err != nil {
		return envelope{}, err
	}
	if m.GetPayload().GetTypeUrl() == "" {
		return envelope{}, errors.New("entry has no payload")
	}
	return envelope{
		destination: m.GetDestination(),
		key:         m.GetKey(),
		payload:     m.GetPayload(),
		createdAt:   m.GetCreatedAt().AsTime(), // 1970 when absent, as before
		attempts:    m.GetAttempts(),
		trace:       m.GetTraceContext(),
	}, nil
}
