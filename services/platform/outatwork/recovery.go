package outatwork

// The local employers' recovery rate (复工率) of employment dynamics: resumed / registered as of a
// day, by kind and in all. One definition for the sending province's figures (its own local
// employers, services/sending/dynamics) and the nation's (the states the provinces report,
// services/coordination/dynamics), so that the nation's figure is the sum of the provinces'.

import (
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
)

// EndOfDay returns the last instant of day d in China: what is recorded at or before it counts
// on d.
func EndOfDay(d *commonv1.Date) time.Time {
	return civil.Start(civil.AddDays(d, 1)).Add(-time.Nanosecond)
}

// StateOn reports whether a local employer created at created, resumed now, with the resumption
// history changes (oldest first), was registered at the time at, and whether it had resumed
// work then: its last resumption change at or before at; before its first change, the state
// that change changed from (an employer registered before the changes were kept); with no
// change, its current state.
func StateOn(created *timestamppb.Timestamp, resumed bool, changes []*sendingv1.ResumptionChange, at time.Time) (registered, resumedThen bool) {
	if created.AsTime().After(at) {
		return false, false
	}
	if len(changes) == 0 {
		return true, resumed
	}
	for i := len(changes) - 1; i >= 0; i-- {
		if !changes[i].GetChangeTime().AsTime().After(at) {
			return true, changes[i].GetResumed()
		}
	}
	return true, !changes[0].GetResumed()
}

// Recovery tallies local employers by kind as of one instant (EndOfDay of the day asked).
type Recovery struct {
	at     time.Time
	byKind map[sendingv1.LocalEmployerKind]*[2]int64 // registered, resumed
}

// NewRecovery returns an empty tally as of at.
func NewRecovery(at time.Time) *Recovery {
	return &Recovery{at: at, byKind: map[sendingv1.LocalEmployerKind]*[2]int64{}}
}

// Add counts one employer (StateOn says whether and how).
func (r *Recovery) Add(kind sendingv1.LocalEmployerKind, created *timestamppb.Timestamp, resumed bool, changes []*sendingv1.ResumptionChange) {
	registered, resumedThen := StateOn(created, resumed, changes, r.at)
	if !registered {
		return
	}
	c := r.byKind[kind]
	if c == nil {
		c = &[2]int64{}
		r.byKind[kind] = c
	}
	c[0]++
	if resumedThen {
		c[1]++
	}
}

// Empty reports whether no employer was registered at the instant.
func (r *Recovery) Empty() bool { return len(r.byKind) == 0 }

// Rates returns the recovery rate by kind, in kind order (kinds with no employer registered left
// out), and of all kinds together (kind unspecified).
func (r *Recovery) Rates() (byKind []*sendingv1.LocalRecovery, total *sendingv1.LocalRecovery) {
	var registered, resumed int64
	for _, k := range slices.Sorted(maps.Keys(r.byKind)) {
		c := r.byKind[k]
		registered += c[0]
		resumed += c[1]
		byKind = append(byKind, &sendingv1.LocalRecovery{Kind: k, RecoveryRate: Ratio(c[1], c[0])})
	}
	return byKind, &sendingv1.LocalRecovery{RecoveryRate: Ratio(resumed, registered)}
}
