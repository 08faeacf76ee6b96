package store

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Request-id idempotency (AIP-155). A mutating handler does, inside ONE
// Update transaction:
//
//	if ok, err := store.Recall(tx, method, req.GetRequestId(), resp); err != nil || ok {
//		return err // resp holds the first response
//	}
//	... change data, fill resp ...
//	return store.Remember(tx, method, req.GetRequestId(), resp)
//
// An empty request id disables both (Recall reports false, Remember stores
// nothing).
//
// The stored value is a protobuf message (wire-compatible with
// `message Remembered { google.protobuf.Any response = 1;
// google.protobuf.Timestamp stored_at = 2; }`) so that old entries can later
// be pruned by age.

const (
	rememberedResponse protowire.Number = 1
	rememberedStoredAt protowire.Number = 2
)

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

// Recall looks up the response remembered for (method, requestID) and, if
// there is one, unmarshals it into resp and reports true. It works in
// read-only and read-write transactions.
func Recall(tx *bbolt.Tx, method, requestID string, resp proto.Message) (bool, error) {
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
		return false, nil
	}
	anyResp, _, err := decodeRemembered(v)
	if err != nil {
		return false, fmt.Errorf("idempotency: decode remembered response of %s: %w", method, err)
	}
	if err := anyResp.UnmarshalTo(resp); err != nil {
		return false, fmt.Errorf("idempotency: remembered response of %s: %w", method, err)
	}
	return true, nil
}

// Remember stores resp as the response to (method, requestID). tx must be
// read-write.
func Remember(tx *bbolt.Tx, method, requestID string, resp proto.Message) error {
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
	v, err := encodeRemembered(resp, time.Now())
	if err != nil {
		return fmt.Errorf("idempotency: encode response of %s: %w", method, err)
	}
	return b.Put(key, v)
}

func encodeRemembered(resp proto.Message, at time.Time) ([]byte, error) {
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
	out = protowire.AppendTag(out, rememberedResponse, protowire.BytesType)
	out = protowire.AppendBytes(out, ab)
	out = protowire.AppendTag(out, rememberedStoredAt, protowire.BytesType)
	out = protowire.AppendBytes(out, tb)
	return out, nil
}

func decodeRemembered(v []byte) (*anypb.Any, time.Time, error) {
	a := &anypb.Any{}
	ts := &timestamppb.Timestamp{}
	for len(v) > 0 {
		num, typ, n := protowire.ConsumeTag(v)
		if n < 0 {
			return nil, time.Time{}, protowire.ParseError(n)
		}
		v = v[n:]
		if typ != protowire.BytesType || (num != rememberedResponse && num != rememberedStoredAt) {
			n = protowire.ConsumeFieldValue(num, typ, v)
			if n < 0 {
				return nil, time.Time{}, protowire.ParseError(n)
			}
			v = v[n:]
			continue
		}
		b, n := protowire.ConsumeBytes(v)
		if n < 0 {
			return nil, time.Time{}, protowire.ParseError(n)
		}
		v = v[n:]
		var m proto.Message = a
		if num == rememberedStoredAt {
			m = ts
		}
		// Merge semantics, as for a repeated occurrence of a message field.
		if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(b, m); err != nil {
			return nil, time.Time{}, err
		}
	}
	if a.GetTypeUrl() == "" {
		return nil, time.Time{}, errors.New("no response recorded")
	}
	return a, ts.AsTime(), nil
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
			if _, at, err := decodeRemembered(v); err == nil && at.Before(cutoff) {
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
