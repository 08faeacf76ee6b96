// Package store is the one way labourlink services open and use their bbolt
// file: a lock timeout instead of a hang when another process holds the file,
// a schema name and version recorded in the file and checked at open, every
// bucket name of the suite in one place (buckets.go), protobuf value helpers
// with copy semantics, request-id idempotency (AIP-155), and a clear error
// (ErrStorageFull) and state (Full) when the disk has no space left.
package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"
	"go.uber.org/zap"

	"github.com/eastwest/labourlink/services/platform/failpoint"
)

// DefaultOpenTimeout is how long Open waits for the file lock.
const DefaultOpenTimeout = 2 * time.Second

// Meta bucket keys.
var (
	metaKeySchema   = []byte("schema")
	metaKeyVersion  = []byte("version")
	metaKeyInstance = []byte("instance")
)

// ErrInUse is wrapped by the error Open returns when another process (or
// another open handle) holds the data file.
var ErrInUse = errors.New("data file in use")

// ErrSchemaMismatch is wrapped by the error Open returns when the file was
// written for another schema, by a newer version, or is not a data file of
// the suite.
var ErrSchemaMismatch = errors.New("schema mismatch")

// Schema describes what a service keeps in its file.
type Schema struct {
	// Name of the schema, e.g. "sending". A file written for one schema is
	// never opened with another.
	Name string
	// Version of the schema, 1 or more. A file with a newer version is
	// refused; a file with an older version is refused unless Migrate is set.
	Version uint64
	// Buckets created at open: the service's own and the shared ones of buckets.go it uses;
	// no name may appear twice. BucketMeta and
	// BucketIdempotency are always created.
	Buckets [][]byte
	// Migrate, if set, upgrades a file written with version from (older than
	// Version) in the open transaction; the version is then recorded as
	// Version. Buckets are created after Migrate returns.
	Migrate func(tx *bbolt.Tx, from uint64) error
}

// Option changes how Open works.
type Option func(*options)

type options struct {
	timeout time.Duration
}

// WithTimeout sets how long Open waits for the file lock (default 2s).
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// DB is an open data file.
type DB struct {
	bolt     *bbolt.DB
	path     string
	schema   Schema
	instance string
	lg       *zap.Logger
	// fullState and fullFlag follow whether writes fail for want of space (full.go); the flag
	// lets a successful write check it without taking the lock.
	fullState fullState
	fullFlag  atomic.Bool
}

// Open opens (creating it and its directory if needed) the data file at path
// for schema. An empty file is initialised with the schema's name and
// version; a file for another schema, of a newer version, or without the
// schema record is refused. The schema's buckets are created.
//
// If the file is locked by another process, Open fails after the timeout
// with "data file <path> is in use by another process".
func Open(path string, schema Schema, lg *zap.Logger, opts ...Option) (*DB, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	o := options{timeout: DefaultOpenTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if schema.Name == "" || schema.Version == 0 {
		return nil, fmt.Errorf("open data file %s: schema needs a name and a version above 0", path)
	}
	seen := map[string]bool{string(BucketMeta): true}
	for _, b := range schema.Buckets {
		if seen[string(b)] && !bytes.Equal(b, BucketMeta) {
			// Two tables of the service over one bucket would read each other's values.
			return nil, fmt.Errorf("open data file %s: schema %s names bucket %q twice", path, schema.Name, b)
		}
		seen[string(b)] = true
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
	}
	bdb, err := bbolt.Open(path, 0o600, BoltOptions(o.timeout))
	if err != nil {
		if errors.Is(err, bberrors.ErrTimeout) {
			return nil, fmt.Errorf("data file %s is in use by another process (waited %s): %w", path, o.timeout, ErrInUse)
		}
		return nil, fmt.Errorf("open data file %s: %w", path, err)
	}
	db := &DB{bolt: bdb, path: path, schema: schema, lg: lg.With(zap.String("data_file", path))}
	if err := db.Update(db.prepare); err != nil {
		_ = bdb.Close()
		return nil, fmt.Errorf("open data file %s: %w", path, err)
	}
	return db, nil
}

// InitialMap is how much of a data file bbolt maps at first, beyond the file's size (address
// space only: the file grows as it is written). bbolt must map the file again when it outgrows
// the mapping, and that waits for every open read transaction to end and copies the write
// transaction's changed pages out of the old map; with a gibibyte mapped from the start, a
// regional file never needs it and the ledger's needs it once per gibibyte it grows (as etcd,
// whose default is 10 GiB).
const InitialMap = 1 << 30

// BoltOptions are the bbolt options Open opens a data file with, waiting timeout for its lock.
func BoltOptions(timeout time.Duration) *bbolt.Options {
	return &bbolt.Options{Timeout: timeout, InitialMmapSize: InitialMap}
}

// prepare checks or writes the schema record and creates the buckets.
func (db *DB) prepare(tx *bbolt.Tx) error {
	s := db.schema
	meta := tx.Bucket(BucketMeta)
	if meta == nil {
		// Only a file without any bucket is taken as new.
		if k, _ := tx.Cursor().First(); k != nil {
			return fmt.Errorf("%w: file has no schema record (not a labourlink data file?)", ErrSchemaMismatch)
		}
		var err error
		if meta, err = tx.CreateBucket(BucketMeta); err != nil {
			return err
		}
		if err := meta.Put(metaKeySchema, []byte(s.Name)); err != nil {
			return err
		}
		if err := meta.Put(metaKeyVersion, Uint64Key(s.Version)); err != nil {
			return err
		}
		db.lg.Info("initialised data file", zap.String("schema", s.Name), zap.Uint64("version", s.Version))
	} else {
		name := meta.Get(metaKeySchema)
		if name == nil {
			return fmt.Errorf("%w: file has no schema record (not a labourlink data file?)", ErrSchemaMismatch)
		}
		if !bytes.Equal(name, []byte(s.Name)) {
			return fmt.Errorf("%w: file holds schema %q, this program expects %q", ErrSchemaMismatch, name, s.Name)
		}
		raw := meta.Get(metaKeyVersion)
		if len(raw) != 8 {
			return fmt.Errorf("%w: file has an unreadable schema version", ErrSchemaMismatch)
		}
		version := KeyUint64(raw)
		switch {
		case version > s.Version:
			return fmt.Errorf("%w: file has %s schema version %d, newer than version %d of this program; use a newer program",
				ErrSchemaMismatch, s.Name, version, s.Version)
		case version < s.Version:
			if s.Migrate == nil {
				return fmt.Errorf("%w: file has %s schema version %d, this program needs %d and cannot upgrade it",
					ErrSchemaMismatch, s.Name, version, s.Version)
			}
			if err := s.Migrate(tx, version); err != nil {
				return fmt.Errorf("upgrade %s schema from version %d to %d: %w", s.Name, version, s.Version, err)
			}
			if err := meta.Put(metaKeyVersion, Uint64Key(s.Version)); err != nil {
				return err
			}
			db.lg.Info("upgraded data file", zap.String("schema", s.Name),
				zap.Uint64("from_version", version), zap.Uint64("version", s.Version))
		}
	}
	instance := meta.Get(metaKeyInstance)
	if instance == nil {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("make instance id: %w", err)
		}
		instance = []byte(hex.EncodeToString(b[:]))
		if err := meta.Put(metaKeyInstance, instance); err != nil {
			return err
		}
	}
	db.instance = string(instance) // string() copies out of the transaction
	for _, name := range append([][]byte{BucketIdempotency}, s.Buckets...) {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

// Update runs fn in a read-write transaction, committed if fn returns nil.
// When Update returns nil the change is on disk. When the disk or the quota is
// full the error wraps ErrStorageFull (see Full).
//
// Every commit of the suite passes here, so the crash points before and after a commit are
// here too (services/platform/failpoint; they cost nothing unless a test arms them).
func (db *DB) Update(fn func(*bbolt.Tx) error) error {
	if !failpoint.Enabled() {
		return db.checkWrite(db.bolt.Update(fn))
	}
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		failpoint.Inject(failpoint.StoreBeforeCommit)
		return nil
	})
	if err == nil {
		failpoint.Inject(failpoint.StoreAfterCommit)
	}
	return db.checkWrite(err)
}

// View runs fn in a read-only transaction. Byte slices read inside fn are
// valid only until fn returns: copy them out (GetProto does).
func (db *DB) View(fn func(*bbolt.Tx) error) error { return db.bolt.View(fn) }

// Stats returns bbolt's statistics of the file (its transactions' cursors, nodes, pages
// written: cumulative since it was opened).
func (db *DB) Stats() bbolt.Stats { return db.bolt.Stats() }

// Close closes the file and releases its lock.
func (db *DB) Close() error { return db.bolt.Close() }

// Path returns the file path given to Open.
func (db *DB) Path() string { return db.path }

// InstanceID returns a random identifier (16 hex digits) made when the file
// was initialised. It tells data files apart, e.g. in message ids that must
// be unique across all services (services/platform/outbox uses it).
func (db *DB) InstanceID() string { return db.instance }

// Schema returns the schema the file was opened with.
func (db *DB) Schema() Schema { return db.schema }

// Uint64Key returns n as an 8-byte big-endian key, so keys sort numerically.
func Uint64Key(n uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), n)
}

// KeyUint64 decodes a key made by Uint64Key. It returns 0 for a key that is
// not 8 bytes long.
func KeyUint64(k []byte) uint64 {
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

// NextSeq returns the next value of the bucket's sequence (1, 2, ...). The
// bucket must belong to a read-write transaction.
func NextSeq(b *bbolt.Bucket) (uint64, error) {
	if b == nil {
		return 0, errNoBucket
	}
	return b.NextSequence()
}

var errNoBucket = errors.New("bucket does not exist")
