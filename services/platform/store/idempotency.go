package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	storagev1 "github.com/eastwest/labourlink/proto/labourlink/storage/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
)

// Request-id idempotency (AIP-155). A mutating handler runs its change with
//
//	err := db.UpdateOnce(now, method, req, resp, func(tx *bbolt.Tx) error {
//		... load, apply the rule, save, fill resp ...
//	})
//
// which does, inside ONE Update transaction:
//
//	if ok, err := store.Recall(tx, method, req, resp); err != nil || ok {
//		return err // resp holds the first response
//	}
//	... change data, fill resp ...
//	return store.Remember(tx, now, method, req, resp)
//
// method is the generated full method name (sendingv1.RosterService_AddWorker_FullMethodName):
// it is part of the idempotency key, so it is never typed by hand.
//
// The request id is the request's `request_id` field; a request without one
// (empty, or no such field) is not idempotent: Recall reports false and
// Remember stores nothing. A request id used again with a different request
// (another body under the same id, or the same id under another method of
// the same service) is refused with INVALID_ARGUMENT on `request_id` rather
// than answered with the first response of another request, or, worse, run
// as a new request.
//
// Order of checks: every mutation validates its arguments first (at the
// edge, grpcserver's validation step), then calls Recall first thing in its
// transaction, before it reads any state: a repeat returns the first answer
// and a reused id is refused whatever state the data is in now (a worker
// DEPARTED since is not FAILED_PRECONDITION for a request that was never
// going to run); only then come the state rules.
//
// The stored value is a labourlink.storage.v1.RememberedResponse (the response,
// when it was stored, the request's fingerprint), so that old entries can be
// pruned by age (PruneIdempotency). It was encoded by hand with protowire
// before that message was defined; the message keeps those field numbers and
// types (TestRememberedGolden).

// UpdateOnce runs fn in one read-write transaction with request-id
// idempotency: a repeat of req (same method and request id, same body) gets
// the first response in resp without running fn; a reused id with another
// body is refused; otherwise fn changes the data and fills resp, which is
// remembered at time now in the same transaction.
func (db *DB) UpdateOnce(now time.Time, method string, req, resp proto.Message, fn func(tx *bbolt.Tx) error) error {
	return db.Update(func(tx *bbolt.Tx) error {
		if ok, err := Recall(tx, method, req, resp); err != nil || ok {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		return Remember(tx, now, method, req, resp)
	})
}

// RequestID returns the `request_id` field of req, or "" when it has none.
func RequestID(req proto.Message) string {
	m := req.ProtoReflect()
	fd := m.Descriptor().Fields().ByName("request_id")
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() {
		return ""
	}
	return m.Get(fd).String()
}

// Fingerprint identifies the content of a message: the SHA-256 of its deterministic encoding
// (32 bytes). A request id's request is compared by it, and so are the rows an import id has on
// disk with rows sent again under that id (services/sending/roster, services/receiving/vacancies).
func Fingerprint(req proto.Message) ([]byte, error) {
	b, err := marshalOpts.Marshal(req)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	return sum[:], nil
}

func idempotencyKey(method, requestID string) ([]byte, error) {
	if strings.IndexByte(method, 0) >= 0 {
		return nil, errors.New("idempotency: method name contains a NUL byte")
	}
	k := make([]byte, 0, len(method)+1+len(requestID))
	k = append(k, method...)
	k = append(k, 0)
	k = append(k, requestID...)
	return k, nil
}

// Recall looks up the response remembered for req's request id under method
// and, if there is one, unmarshals it into resp and reports true. A request id
// remembered for a different request is an INVALID_ARGUMENT error. It works in
// read-only and read-write transactions.
func Recall(tx *bbolt.Tx, method string, req, resp proto.Message) (bool, error) {
	requestID := RequestID(req)
	if requestID == "" {
		return false, nil
	}
	key, err := idempotencyKey(method, requestID)
	if err != nil {
		return false, err
	}
	b := tx.Bucket(BucketIdempotency)
	if b == nil {
		return false, nil
	}
	v := b.Get(key)
	if v == nil {
		if other, ok := usedByOtherMethod(b, method, requestID); ok {
			var v apierror.Violations
			v.Addf("request_id", "was already used for another call (%s); use a new request id for a new request", other)
			return false, v.Err()
		}
		return false, nil
	}
	rec, err := decodeRemembered(v)
	if err != nil {
		return false, fmt.Errorf("idempotency: decode remembered response of %s: %w", method, err)
	}
	if rec.fingerprint != nil {
		fp, err := Fingerprint(req)
		if err != nil {
			return false, fmt.Errorf("idempotency: %w", err)
		}
		if !bytes.Equal(fp, rec.fingerprint) {
			var v apierror.Violations
			v.Add("request_id", "was already used for a different request; use a new request id for a new request")
			return false, v.Err()
		}
	}
	if err := rec.response.UnmarshalTo(resp); err != nil {
		return false, fmt.Errorf("idempotency: remembered response of %s: %w", method, err)
	}
	return true, nil
}

// usedByOtherMethod reports the method, other than method, under which requestID is remembered.
// Keys are method NUL request id, so the keys of one method are contiguous: it seeks once per
// method remembered (a few dozen at most), not once per key.
func usedByOtherMethod(b *bbolt.Bucket, method, requestID string) (string, bool) {
	c := b.Cursor()
	for k, _ := c.First(); k != nil; {
		i := bytes.IndexByte(k, 0)
		if i < 0 {
			k, _ = c.Next() // not an idempotency key
			continue
		}
		m := k[:i]
		if string(m) != method {
			probe := make([]byte, 0, i+1+len(requestID))
			probe = append(append(append(probe, m...), 0), requestID...)
			if got, _ := c.Seek(probe); got != nil && bytes.Equal(got, probe) {
				return string(m), true
			}
		}
		// Every key of method m sorts below m followed by byte 1.
		next := append(append(make([]byte, 0, i+1), m...), 1)
		k, _ = c.Seek(next)
	}
	return "", false
}

// Remember stores resp as the response to req (by its request id) under
// method, recorded at time at (the service's clock: PruneIdempotency removes
// records by that time). tx must be read-write.
func Remember(tx *bbolt.Tx, at time.Time, method string, req, resp proto.Message) error {
	requestID := RequestID(req)
	if requestID == "" {
		return nil
	}
	key, err := idempotencyKey(method, requestID)
	if err != nil {
		return err
	}
	b, err := tx.CreateBucketIfNotExists(BucketIdempotency)
	if err != nil {
		return fmt.Errorf("idempotency: %w", err)
	}
	fp, err := Fingerprint(req)
	if err != nil {
		return fmt.Errorf("idempotency: fingerprint request of %s: %w", method, err)
	}
	v, err := encodeRemembered(resp, fp, at)
	if err != nil {
		return fmt.Errorf("idempotency: encode response of %s: %w", method, err)
	}
	return b.Put(key, v)
}

func encodeRemembered(resp proto.Message, fp []byte, at time.Time) ([]byte, error) {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, resp, marshalOpts); err != nil {
		return nil, err
	}
	return marshalOpts.Marshal(&storagev1.RememberedResponse{
		Response:      a,
		StoredAt:      timestamppb.New(at),
		RequestSha256: fp,
	})
}

// remembered is a decoded idempotency record.
type remembered struct {
	response    *anypb.Any
	storedAt    time.Time
	fingerprint []byte // nil in records written before fingerprints were kept
}

// decodeRemembered decodes v; the result does not alias v.
func decodeRemembered(v []byte) (remembered, error) {
	var m storagev1.RememberedResponse
	if err := proto.Unmarshal(v, &m); err != nil {
		return remembered{}, err
	}
	if m.GetResponse().GetTypeUrl() == "" {
		return remembered{}, errors.New("no response recorded")
	}
	fp := m.GetRequestSha256()
	if len(fp) == 0 {
		fp = nil // absent (or empty): no fingerprint to check
	}
	return remembered{response: m.GetResponse(), storedAt: m.GetStoredAt().AsTime(), fingerprint: fp}, nil
}

// pruneChunk bounds the records one PruneIdempotency transaction examines, keeping write
// transactions short.
const pruneChunk = 10000

// PruneIdempotency deletes the responses remembered before cutoff and returns how many it
// deleted. A request id older than the retention is then treated as new: callers choose a
// retention far longer than any client retries (the daemon's default is 30 days).
func PruneIdempotency(db *DB, cutoff time.Time) (int, error) {
	total := 0
	var from []byte // nil: from the first key
	for {
		n, next, err := pruneIdempotencyChunk(db, cutoff, from)
		total += n
		if err != nil || next == nil {
			return total, err
		}
		from = next
	}
}

// pruneIdempotencyChunk examines at most pruneChunk records from key `from` (inclusive; nil
// for the first), deletes those remembered before cutoff, and returns the first key it did not
// examine (nil at the end).
func pruneIdempotencyChunk(db *DB, cutoff time.Time, from []byte) (int, []byte, error) {
	var old [][]byte
	var next []byte
	err := db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(BucketIdempotency)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		k, v := c.First()
		if from != nil {
			k, v = c.Seek(from)
		}
		for examined := 0; k != nil; k, v = c.Next() {
			if examined == pruneChunk {
				next = append([]byte(nil), k...)
				break
			}
			examined++
			if rec, err := decodeRemembered(v); err == nil && rec.storedAt.Before(cutoff) {
				old = append(old, append([]byte(nil), k...))
			}
		}
		for _, key := range old {
			if err := b.Delete(key); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return len(old), next, nil
}
