package outbox

import (
	"bytes"
	"fmt"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	outboxv1 "github.com/eastwest/labourlink/proto/labourlink/outbox/v1"
	"github.com/eastwest/labourlink/services/platform/store"
)

// MigratePackageRoot rewrites the messages of a data file written before the API's package root
// was renamed from labour.* to labourlink.* (store.MigratePackageRoot has the story): the type
// URL of each queued entry's payload, and the type and payload of each quarantined entry. It
// returns how many records it rewrote; running it twice changes nothing.
func MigratePackageRoot(tx *bbolt.Tx) (int, error) {
	type rewrite struct {
		b          *bbolt.Bucket
		key, value []byte
	}
	var todo []rewrite
	if top := tx.Bucket(store.BucketOutbox); top != nil {
		err := top.ForEachBucket(func(dest []byte) error {
			b := top.Bucket(dest)
			return b.ForEach(func(k, v []byte) error {
				e, err := decodeEnvelope(v)
				if err != nil {
					return fmt.Errorf("entry %s/%x: %w", dest, k, err)
				}
				url, renamed := store.RenamedTypeURL(e.payload.GetTypeUrl())
				if !renamed {
					return nil
				}
				e.payload.TypeUrl = url
				nv, err := encodeEnvelope(e)
				if err != nil {
					return err
				}
				todo = append(todo, rewrite{b: b, key: bytes.Clone(k), value: nv})
				return nil
			})
		})
		if err != nil {
			return 0, fmt.Errorf("outbox: %w", err)
		}
	}
	if b := tx.Bucket(store.BucketOutboxQuarantine); b != nil {
		err := b.ForEach(func(k, v []byte) error {
			var q outboxv1.QuarantinedEntry
			if err := proto.Unmarshal(v, &q); err != nil {
				return fmt.Errorf("quarantined entry %x: %w", k, err)
			}
			url, renamed := store.RenamedTypeURL(q.GetPayload().GetTypeUrl())
			if !renamed {
				return nil
			}
			q.Payload.TypeUrl = url
			q.Type = typeName(url)
			nv, err := proto.MarshalOptions{Deterministic: true}.Marshal(&q)
			if err != nil {
				return err
			}
			todo = append(todo, rewrite{b: b, key: bytes.Clone(k), value: nv})
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("outbox quarantine: %w", err)
		}
	}
	for _, r := range todo {
		if err := r.b.Put(r.key, r.value); err != nil {
			return 0, err
		}
	}
	return len(todo), nil
}
