package store

import (
	"os"

	"github.com/eastwest/labourlink/services/platform/metrics"
)

// Observe exports the data file's size and bbolt's transaction statistics in reg at each
// scrape (metrics.Registry.ObserveStore): a stat of the file and bbolt's counters, no
// transaction.
func (db *DB) Observe(reg *metrics.Registry) {
	reg.ObserveStore(func() (metrics.StoreStats, error) {
		s := metrics.StoreStats{Stats: db.Stats()}
		fi, err := os.Stat(db.path)
		if err != nil {
			return s, err
		}
		s.FileBytes = fi.Size()
		return s, nil
	})
}
