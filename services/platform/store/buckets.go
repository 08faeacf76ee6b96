package store

// All bbolt bucket names of the suite live in this file, so that no two
// services or packages pick the same name for different data (model:
// etcd server/storage/schema/bucket.go). Add new buckets here.
//
// Keys are big-endian uint64 (Uint64Key) or resource ids; values are
// protobuf messages (PutProto/GetProto) unless stated.
var (
	// BucketMeta holds the schema name and version of the file (see Open).
	BucketMeta = []byte("meta")
	// BucketIdempotency holds first responses of mutating RPCs by
	// method+"\x00"+request_id (AIP-155; see Recall and Remember).
	BucketIdempotency = []byte("idempotency")

	// Shared by the services that send messages to peers (services/platform/outbox).
	BucketOutbox = []byte("outbox")
	// BucketOutboxQuarantine holds the messages peers refused for good (seq -> outboxv1.QuarantinedEntry).
	BucketOutboxQuarantine = []byte("outboxQuarantine")

	// Any service: named counters.
	BucketCounters = []byte("counters")
)
