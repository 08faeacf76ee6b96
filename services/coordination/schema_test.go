package coordination

import (
	"slices"
	"testing"
)

// The bucket names are storage layout: a file written before the subsystems had their own
// storage must still open and read the same, so the names stay these strings.
func TestSchemaBucketNames(t *testing.T) {
	t.Parallel()
	want := []string{
		"regions", "pairings", "ledgerEvents", "ledgerByWorker", "baselines", "discrepancies",
		"discrepancyChanges", "counters", "ledgerEventIDs", "ledgerByBatch", "ledgerByPairing",
		"ledgerAssessment", "ledgerBatches", "ledgerDeadlines", "discrepancyNames",
		"ledgerDynamicsTrips", "ledgerDynamicsDays", "ledgerDynamicsYears", "localEmployers",
		"ledgerDynamicsDimDays", "ledgerDynamicsDimYears", "ledgerTreeLeaves", "ledgerTreeNodes", "ledgerTreeSeqs", "ledgerTreeSizes",
		"ledgerPairingFirsts", "ledgerPairingRepeats", "ledgerPairingWorkers", "ledgerOpenCounts", "ledgerAssessedCounts", "ledgerByKind", "ledgerByRegion",
		"replication",
	}
	var got []string
	for _, b := range Schema.Buckets {
		got = append(got, string(b))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("buckets %q, want %q", got, want)
	}
	if Schema.Name != "coordination" || Schema.Version != 11 {
		t.Fatalf("schema %s version %d", Schema.Name, Schema.Version)
	}
}
