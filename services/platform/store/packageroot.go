package store

import (
	"bytes"
	"fmt"
	"strings"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	storagev1 "github.com/eastwest/labourlink/proto/labourlink/storage/v1"
)

// The API's proto packages were renamed from labour.* to labourlink.* before v1 was declared
// stable (docs/api.md, "The package root"). The old root survives in data files written before
// the rename, in two places: the full method names in the keys of remembered responses
// ("/labour.sending.v1.RosterService/UpdateWorker" NUL request id), and the type URLs of
// google.protobuf.Any values ("type.googleapis.com/labour.sending.v1.UpdateWorkerResponse":
// remembered responses here, outbox entries and quarantined entries in platform/outbox). Each
// service's schema migration rewrites them with MigratePackageRoot and
// outbox.MigratePackageRoot, so that a retry of a request acknowledged before an upgrade still
// gets its first answer and a message queued before it is still delivered.
const (
	oldPackageRoot = "labour."
	newPackageRoot = "labourlink."
)

// RenamedMethod returns the full method name m ("/labour.x.v1.S/M") under the new package
// root, and whether it was under the old one.
func RenamedMethod(m string) (string, bool) {
	if rest, ok := strings.CutPrefix(m, "/"+oldPackageRoot); ok {
		return "/" + newPackageRoot + rest, true
	}
	return m, false
}

// RenamedTypeURL returns the type URL u ("type.googleapis.com/labour.x.v1.M") under the new
// package root, and whether it was under the old one.
func RenamedTypeURL(u string) (string, bool) {
	i := strings.LastIndexByte(u, '/')
	if rest, ok := strings.CutPrefix(u[i+1:], oldPackageRoot); ok {
		return u[:i+1] + newPackageRoot + rest, true
	}
	return u, false
}

// MigratePackageRoot rewrites the remembered responses of a data file written before the
// package root was renamed: the method name in each key and the type URL of each response. It
// returns how many records it rewrote; records already under the new root are left as they are,
// so running it twice changes nothing.
func MigratePackageRoot(tx *bbolt.Tx) (int, error) {
	b := tx.Bucket(BucketIdempotency)
	if b == nil {
		return 0, nil
	}
	type rewrite struct{ oldKey, newKey, value []byte }
	var todo []rewrite
	err := b.ForEach(func(k, v []byte) error {
		i := bytes.IndexByte(k, 0)
		if i < 0 {
			return nil // not an idempotency key
		}
		method, renamedKey := RenamedMethod(string(k[:i]))
		var m storagev1.RememberedResponse
		if err := proto.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("remembered response %q: %w", k, err)
		}
		url, renamedURL := RenamedTypeURL(m.GetResponse().GetTypeUrl())
		if !renamedKey && !renamedURL {
			return nil
		}
		m.GetResponse().TypeUrl = url
		nv, err := marshalOpts.Marshal(&m)
		if err != nil {
			return err
		}
		nk := append(append([]byte(method), 0), k[i+1:]...)
		todo = append(todo, rewrite{oldKey: bytes.Clone(k), newKey: nk, value: nv})
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("idempotency: %w", err)
	}
	for _, r := range todo {
		if err := b.Delete(r.oldKey); err != nil {
			return 0, err
		}
		if err := b.Put(r.newKey, r.value); err != nil {
			return 0, err
		}
	}
	return len(todo), nil
}
