package receiving

import (
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/eastwest/labourlink/services/receiving/intake"
)

// migrate upgrades a file of an older version of the receiving schema (Schema).
//
// Version 2 replaced the flags `departed` and `cancelled` of IntakeBatch (fields 12 and 13,
// reserved since) by `state` (field 15): the stored batches are converted
// (intake.MigrateBatchStates).
func migrate(tx *bbolt.Tx, from uint64) error {
	if from < 2 {
		if _, err := intake.MigrateBatchStates(tx); err != nil {
			return fmt.Errorf("intake batch states: %w", err)
		}
	}
	return nil
}
