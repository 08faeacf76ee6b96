package store

// The buckets every service's file has, or that the shared machinery keeps
// (meta, request-id records, outbox, counters). Each service declares its own
// buckets beside its tables (model: etcd server/storage/schema/bucket.go):
// services/sending/{roster,demand,matching,transport}/store.go,
// services/receiving/{vacancies,candidates,intake}, services/coordination/
// {registry,ledger,assessment}; the service's Schema is their union with
// these, and Open refuses a schema that names one bucket twice.
//
// Keys are big-endian uint64 (Uint64Key) or resource ids; values are
// protobuf messages (Table, PutProto/GetProto) unless stated.
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
