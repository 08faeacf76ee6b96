package receiving

import (
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/store"

	"github.com/eastwest/labourlink/services/receiving/intake"
	"github.com/eastwest/labourlink/services/receiving/vacancies"
)

// migrate upgrades a file of an older version of the receiving schema (Schema).
//
// Version 2 replaced the flags `departed` and `cancelled` of IntakeBatch (fields 12 and 13,
// reserved since) by `state` (field 15): the stored batches are converted
// (intake.MigrateBatchStates); it replaced Incident's free-text `kind` (field 2, reserved) by
// `incident_kind` and `detail` (intake.MigrateIncidentKinds); and it added the index of vacancies' natural keys
// (employer_credit_code, external_reference), built from the stored vacancies
// (vacancies.BuildReferenceIndex: those of version 1 have no reference, so it starts empty).
//
// Version 3 renamed the API's package root (labour.* to labourlink.*): the method names and type
// URLs of remembered responses, queued and quarantined messages are rewritten.
//
// Version 4 keeps one employment record per trip (a worker on a batch) instead of one per
// worker: each stored record becomes the trip of its batch_id, named
// `employmentRecords/{worker_id}~{batch_id}`, and the index of trips by worker is built
// (intake.MigrateTrips).
//
// Version 5 adds the employment feeds (one per sending province, bucket employmentChanges):
// they are built from the stored employment records, every fact on file one change, worker by
// worker and each worker's trips in order, committed at the time of the upgrade
// (intake.BuildEmploymentFeeds),
// so a sending province that upgrades mid-season follows its workers' trips from revision 0.
//
// Version 6 keeps what the coordination service's ledger acknowledged (ledgerclient.WatchBuckets:
// the leaf of each event, the newest checkpoint, the failures found). An older file has none:
// the buckets are created empty, and the events acknowledged before the upgrade are not checked
// (the first acknowledgement after it pins the checkpoint; `labourlink ledger verify` checks the
// whole log against its signed root). An older program would not keep them: it refuses the file.
func migrate(tx *bbolt.Tx, from uint64) error {
	if from < 2 {
		if _, err := intake.MigrateBatchStates(tx); err != nil {
			return fmt.Errorf("intake batch states: %w", err)
		}
		if _, err := intake.MigrateIncidentKinds(tx); err != nil {
			return fmt.Errorf("incident kinds: %w", err)
		}
		if _, err := vacancies.BuildReferenceIndex(tx); err != nil {
			return fmt.Errorf("index of vacancy references: %w", err)
		}
	}
	if from < 3 {
		if _, err := store.MigratePackageRoot(tx); err != nil {
			return fmt.Errorf("package root of remembered responses: %w", err)
		}
		if _, err := outbox.MigratePackageRoot(tx); err != nil {
			return fmt.Errorf("package root of outbox messages: %w", err)
		}
	}
	if from < 4 {
		if _, err := intake.MigrateTrips(tx); err != nil {
			return fmt.Errorf("employment records per trip: %w", err)
		}
	}
	if from < 5 {
		if _, err := intake.BuildEmploymentFeeds(tx, time.Now()); err != nil {
			return fmt.Errorf("employment feeds: %w", err)
		}
	}
	return nil
}
