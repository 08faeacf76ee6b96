package sending

import (
	"fmt"
	"slices"

	"go.etcd.io/bbolt"

	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending/demand"
	"github.com/eastwest/labourlink/services/sending/matching"
	"github.com/eastwest/labourlink/services/sending/returnees"
	"github.com/eastwest/labourlink/services/sending/roster"
	"github.com/eastwest/labourlink/services/sending/transport"
)

// Schema is what a sending service keeps in its bbolt file: the buckets of its subsystems
// (each declares its own, next to its tables: roster/store.go, demand/store.go,
// matching/store.go, transport/store.go) and the shared outbox and counters.
//
// Versions: 1, the first; 2 added roster.BucketAvailableWorkers; 3 replaced MatchRun's string
// error (field 12) by a google.rpc.Status (field 17); 4 renamed the API's package root from labour.* to labourlink.*; 5 keeps each worker's trips (Worker.trips); 6 added the local employers and placements of returnees (status PLACED_LOCALLY); 7 keeps each trip's incidents (Trip.incident_reports); 8 keys the index by identity number with a keyed hash and adds the lookup audit; 9 keeps what the ledger acknowledged (ledgerclient.WatchBuckets) (see migrate).
//
// error (field 12) by a google.rpc.Status (field 17); 4 renamed the API's package root from labour.* to labourlink.*; 5 keeps each worker's trips (Worker.trips); 6 added the local employers and placements of returnees (status PLACED_LOCALLY); 7 keeps each trip's incidents (Trip.incident_reports); 8 keys the index by identity number with a keyed hash and adds the lookup audit; 9 adds the indexes of workers by county and by county and name (see migrate).
var Schema = store.Schema{
	Name:    "sending",
	Version: 10,
	Buckets: slices.Concat(
		roster.Buckets(), demand.Buckets(), matching.Buckets(), transport.Buckets(), returnees.Buckets(), ledgerclient.WatchBuckets(),
		[][]byte{store.BucketOutbox, store.BucketOutboxQuarantine, store.BucketCounters},
	),
	Migrate: migrate,
}

// migrate upgrades a file of an older version of the sending schema.
//
// Version 2 added roster.BucketAvailableWorkers, the index of the workers matching reads: it is
// built from the workers of the file.
//
// Version 3 replaced the message of a failed match run (MatchRun field 12, a string) by a
// google.rpc.Status (field 17): matching.MigrateRunErrors converts the stored runs.
//
// Version 4 renamed the API's package root (labour.* to labourlink.*): the method names and type
// URLs of remembered responses, queued and quarantined messages are rewritten.
//
// Version 5 keeps each worker's trips in its record (Worker.trips): transport.BuildTrips rebuilds
// them from the departed batches.
//
// Version 6 added returnees.BucketLocalEmployers and roster.BucketLocalPlacements, empty in an
// older file (no worker is PLACED_LOCALLY there), and the status PLACED_LOCALLY, which an older
// program would not know: it refuses the file.
//
// Version 7 keeps the incidents of each trip (Trip.incident_reports), so that an incident
// delivered again is not counted again: roster.KeepIncidentReports gives the incidents counted
// before one report without details each.
//
// Version 8 keeps the identity number out of the index's keys: roster.MigrateIDNumberIndex
// makes the file's key and rewrites the index (number in clear -> worker id) as
// HMAC-SHA256(key, number) -> worker id. The audit of lookups (roster.BucketLookupRecords) is
// empty in an older file.
//
// Version 9 keeps what the coordination service's ledger acknowledged (ledgerclient.WatchBuckets:
// the leaf of each event, the newest checkpoint, the failures found). An older file has none:
// the buckets are created empty, and the events acknowledged before the upgrade are not checked
// (the first acknowledgement after it pins the checkpoint; `labourlink ledger verify` checks the
// whole log against its signed root). An older program would not keep them: it refuses the file.
//
// Version 10 adds the indexes of live workers by home county and by home county and name
// (roster.BucketWorkersByCounty, roster.BucketWorkersByCountyName), which FindWorkers and
// ListWorkers' home_county filter read: roster.BuildCountyIndexes builds them from the workers.
func migrate(tx *bbolt.Tx, from uint64) error {
	if from < 2 {
		if err := roster.BuildAvailableIndex(tx); err != nil {
			return fmt.Errorf("index of available workers: %w", err)
		}
	}
	if from < 3 {
		if err := matching.MigrateRunErrors(tx); err != nil {
			return fmt.Errorf("errors of match runs: %w", err)
		}
	}
	if from < 4 {
		if _, err := store.MigratePackageRoot(tx); err != nil {
			return fmt.Errorf("package root of remembered responses: %w", err)
		}
		if _, err := outbox.MigratePackageRoot(tx); err != nil {
			return fmt.Errorf("package root of outbox messages: %w", err)
		}
	}
	if from < 5 {
		if _, err := transport.BuildTrips(tx); err != nil {
			return fmt.Errorf("trips of workers: %w", err)
		}
	}
	if from < 7 {
		if _, err := roster.KeepIncidentReports(tx); err != nil {
			return fmt.Errorf("incidents of trips: %w", err)
		}
	}
	if from < 8 {
		if _, err := roster.MigrateIDNumberIndex(tx); err != nil {
			return fmt.Errorf("index of workers by identity number: %w", err)
		}
	}
	if from < 10 {
		if _, err := roster.BuildCountyIndexes(tx); err != nil {
			return fmt.Errorf("indexes of workers by county and name: %w", err)
		}
	}
	return nil
}
