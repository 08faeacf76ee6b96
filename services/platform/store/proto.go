package store

import (
	"fmt"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

var marshalOpts = proto.MarshalOptions{Deterministic: true}

// PutProto stores m under key, marshalled deterministically. The bucket must
// belong to a read-write transaction.
func PutProto(b *bbolt.Bucket, key []byte, m proto.Message) error {
	if b == nil {
		return errNoBucket
	}
	data, err := marshalOpts.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	// bbolt keeps references to key and value until the transaction ends;
	// the caller may reuse its key buffer.
	return b.Put(append([]byte(nil), key...), data)
}

// GetProto reads the value under key into m (which is reset first) and
// reports whether the key exists. m does not alias the transaction's memory,
// so it stays valid after the transaction ends.
func GetProto(b *bbolt.Bucket, key []byte, m proto.Message) (bool, error) {
	if b == nil {
		return false, errNoBucket
	}
	v := b.Get(key)
	if v == nil {
		return false, nil
	}
	// proto.Unmarshal copies bytes and strings out of v.
	if err := proto.Unmarshal(v, m); err != nil {
		// The key is not in the message: keys may be personal data.
		return false, fmt.Errorf("decode stored %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return true, nil
}
