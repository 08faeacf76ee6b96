package store

import (
	"errors"
	"fmt"
	"os"

	"go.etcd.io/bbolt"
)

// FileInfo is what a data file says of itself: its schema record and size.
type FileInfo struct {
	// Schema and Version are the file's schema record ("sending", 6).
	Schema  string
	Version uint64
	// Instance is the file's instance id.
	Instance string
	// Size is the size of the file's data in bytes (bbolt's Tx.Size).
	Size int64
}

// Inspect opens the data file at path read-only (it must not be open elsewhere), runs bbolt's
// consistency check over every page (as `bbolt check`) and returns its schema record. A file
// that is not a bbolt file, is damaged, or has no schema record is an error.
func Inspect(path string) (FileInfo, error) {
	if _, err := os.Stat(path); err != nil {
		return FileInfo{}, err
	}
	bdb, err := bbolt.Open(path, 0o400, &bbolt.Options{ReadOnly: true, Timeout: DefaultOpenTimeout})
	if err != nil {
		return FileInfo{}, fmt.Errorf("open %s: %w", path, err)
	}
	defer bdb.Close()
	var info FileInfo
	err = bdb.View(func(tx *bbolt.Tx) error {
		var problems []error
		for err := range tx.Check() {
			problems = append(problems, err)
			if len(problems) == 10 {
				break
			}
		}
		if len(problems) > 0 {
			return fmt.Errorf("bbolt check found damage: %w", errors.Join(problems...))
		}
		var err error
		info, err = Info(tx)
		return err
	})
	return info, err
}

// Info reads the schema record of the file of tx.
func Info(tx *bbolt.Tx) (FileInfo, error) {
	meta := tx.Bucket(BucketMeta)
	if meta == nil || meta.Get(metaKeySchema) == nil || len(meta.Get(metaKeyVersion)) != 8 {
		return FileInfo{}, fmt.Errorf("%w: no schema record (not a labourlink data file?)", ErrSchemaMismatch)
	}
	return FileInfo{
		Schema:   string(meta.Get(metaKeySchema)),
		Version:  KeyUint64(meta.Get(metaKeyVersion)),
		Instance: string(meta.Get(metaKeyInstance)),
		Size:     tx.Size(),
	}, nil
}
