package intake

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Fields of IntakeBatch before receiving schema version 2, reserved since: two flags that
// `state` (field 15) replaced.
const (
	oldBatchDeparted  protowire.Number = 12 // bool departed
	oldBatchCancelled protowire.Number = 13 // bool cancelled
)

// MigrateBatchStates converts the stored batches of a file older than receiving schema version
// 2: the flags `departed` (12) and `cancelled` (13), read from the unknown fields, become
// `state` (CANCELLED if cancelled, else DEPARTED if departed, else ANNOUNCED; the service never
// set both), and the old fields are dropped. A batch that has a state already is left as it is.
// It returns how many batches it converted.
func MigrateBatchStates(tx *bbolt.Tx) (int, error) {
	if tx.Bucket(batchTable.Name()) == nil {
		return 0, nil // a file without batches: Open creates the bucket
	}
	type fix struct {
		key []byte
		b   *receivingv1.IntakeBatch
	}
	var fixes []fix
	err := batchTable.Scan(tx, store.Range{}, func(k []byte, b *receivingv1.IntakeBatch) (bool, error) {
		if b.GetState() != receivingv1.IntakeBatchState_INTAKE_BATCH_STATE_UNSPECIFIED {
			return true, nil
		}
		departed, cancelled, rest, err := oldBatchFlags(b.ProtoReflect().GetUnknown())
		if err != nil {
			return false, fmt.Errorf("batch %s: %w", k, err)
		}
		switch {
		case cancelled:
			b.State = batchCancelled
		case departed:
			b.State = batchDeparted
		default:
			b.State = batchAnnounced
		}
		b.ProtoReflect().SetUnknown(rest)
		fixes = append(fixes, fix{bytes.Clone(k), b})
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	for _, f := range fixes {
		if err := batchTable.Put(tx, f.key, f.b); err != nil {
			return 0, err
		}
	}
	return len(fixes), nil
}

// oldBatchFlags reads the old flags out of the unknown fields of a stored batch and returns the
// other unknown fields as they were.
func oldBatchFlags(unknown []byte) (departed, cancelled bool, rest []byte, err error) {
	for len(unknown) > 0 {
		num, typ, n := protowire.ConsumeField(unknown)
		if n < 0 {
			return false, false, nil, fmt.Errorf("unknown fields: %w", protowire.ParseError(n))
		}
		field := unknown[:n]
		unknown = unknown[n:]
		if (num == oldBatchDeparted || num == oldBatchCancelled) && typ == protowire.VarintType {
			_, _, tn := protowire.ConsumeTag(field)
			v, vn := protowire.ConsumeVarint(field[tn:])
			if vn < 0 {
				return false, false, nil, fmt.Errorf("field %d: %w", num, protowire.ParseError(vn))
			}
			if num == oldBatchDeparted {
				departed = v != 0
			} else {
				cancelled = v != 0
			}
			continue
		}
		rest = append(rest, field...)
	}
	return departed, cancelled, rest, nil
}

// oldIncidentKind is the field of Incident before receiving schema version 2, reserved since:
// the kind as free text, which `incident_kind` (4) and `detail` (5) replaced.
const oldIncidentKind protowire.Number = 2 // string kind

// MigrateIncidentKinds converts the incidents of the stored employment records of a file older
// than receiving schema version 2: the free-text kind (field 2, read from the unknown fields)
// becomes `incident_kind` (a known text such as "injury" or "wage dispute" its kind, see
// knownKindTexts; any other text OTHER, with the text kept in `detail`), and the old field is
// dropped. An incident that has a kind already is left as it is. It returns how many incidents
// it converted.
func MigrateIncidentKinds(tx *bbolt.Tx) (int, error) {
	if tx.Bucket(recordTable.Name()) == nil {
		return 0, nil
	}
	type fix struct {
		key []byte
		r   *receivingv1.EmploymentRecord
	}
	var fixes []fix
	converted := 0
	err := recordTable.Scan(tx, store.Range{}, func(k []byte, r *receivingv1.EmploymentRecord) (bool, error) {
		changed := false
		for i, in := range r.GetIncidents() {
			if in.GetIncidentKind() != kindUnspecified {
				continue
			}
			text, rest, err := oldIncidentText(in.ProtoReflect().GetUnknown())
			if err != nil {
				return false, fmt.Errorf("record %s, incident %d: %w", k, i, err)
			}
			in.IncidentKind, in.Detail = kindOfText(text)
			in.ProtoReflect().SetUnknown(rest)
			changed = true
			converted++
		}
		if changed {
			fixes = append(fixes, fix{bytes.Clone(k), r})
		}
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	for _, f := range fixes {
		if err := recordTable.Put(tx, f.key, f.r); err != nil {
			return 0, err
		}
	}
	return converted, nil
}

// oldIncidentText reads the old free-text kind out of the unknown fields of a stored incident
// and returns the other unknown fields as they were.
func oldIncidentText(unknown []byte) (text string, rest []byte, err error) {
	for len(unknown) > 0 {
		num, typ, n := protowire.ConsumeField(unknown)
		if n < 0 {
			return "", nil, fmt.Errorf("unknown fields: %w", protowire.ParseError(n))
		}
		field := unknown[:n]
		unknown = unknown[n:]
		if num == oldIncidentKind && typ == protowire.BytesType {
			_, _, tn := protowire.ConsumeTag(field)
			v, vn := protowire.ConsumeBytes(field[tn:])
			if vn < 0 {
				return "", nil, fmt.Errorf("field %d: %w", num, protowire.ParseError(vn))
			}
			text = string(v)
			continue
		}
		rest = append(rest, field...)
	}
	return text, rest, nil
}

// MigrateTrips converts the employment records of a file older than receiving schema version 4,
// one per worker under the worker id (the worker's latest stay), to one per trip: each record
// becomes the trip of its batch_id, stored under the trip id and named
// `employmentRecords/{worker_id}~{batch_id}`, and the index of trips by worker gets that trip as
// the worker's only (current) one. Nothing else of a record changes. Earlier stays that a later
// one overwrote before version 4 are not on file (their facts are in the coordination ledger).
// It returns how many records it converted.
func MigrateTrips(tx *bbolt.Tx) (int, error) {
	if tx.Bucket(recordTable.Name()) == nil {
		return 0, nil
	}
	if _, err := tx.CreateBucketIfNotExists(tripsBucket); err != nil {
		return 0, err
	}
	type fix struct {
		oldKey []byte
		r      *receivingv1.EmploymentRecord
	}
	var fixes []fix
	err := recordTable.Scan(tx, store.Range{}, func(k []byte, r *receivingv1.EmploymentRecord) (bool, error) {
		if r.GetWorkerId() == "" || r.GetBatchId() == "" {
			return false, fmt.Errorf("employment record %s has no worker id or no batch id", k)
		}
		if string(k) == tripID(r.GetWorkerId(), r.GetBatchId()) {
			return true, nil // a trip already
		}
		fixes = append(fixes, fix{bytes.Clone(k), r})
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	for _, f := range fixes {
		key := []byte(tripID(f.r.GetWorkerId(), f.r.GetBatchId()))
		if _, taken, err := recordTable.Get(tx, key); err != nil {
			return 0, err
		} else if taken {
			return 0, fmt.Errorf("employment record %s: trip %s is on file twice", f.oldKey, key)
		}
		if err := recordTable.Delete(tx, f.oldKey); err != nil {
			return 0, err
		}
		f.r.Name = RecordName(f.r.GetWorkerId(), f.r.GetBatchId())
		if err := putRecord(tx, f.r); err != nil {
			return 0, err
		}
		if err := addTrip(tx, f.r.GetWorkerId(), f.r.GetBatchId()); err != nil {
			return 0, err
		}
	}
	return len(fixes), nil
}

// tripFacts are the employment-feed changes (without revisions) of the facts stored on trip r
// of batch b (nil when it is not on file) for vacancy vac (nil when not on file), committed at
// now, in the order of a trip: the arrival outcome, onboarding, then the checkpoints, incidents
// and leaving the job by their days (on the same day in that order). A NO_SHOW keeps no time of
// its own on the record: it is dated at the batch's expected arrival.
func tripFacts(r *receivingv1.EmploymentRecord, b *receivingv1.IntakeBatch, vac *receivingv1.Vacancy, now time.Time) []*receivingv1.EmploymentChange {
	var out []*receivingv1.EmploymentChange
	change := func(kind receivingv1.EmploymentChangeKind, occur *timestamppb.Timestamp) *receivingv1.EmploymentChange {
		return tripChange(kind, r, vac, occur, now)
	}
	day := func(d *commonv1.Date) *timestamppb.Timestamp { return timestamppb.New(civil.Start(d)) }
	switch {
	case r.GetArrivalTime() != nil:
		out = append(out, change(receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_ARRIVED, r.GetArrivalTime()))
	case r.GetStatus() == noShow:
		out = append(out, change(receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_NO_SHOW, b.GetExpectedArrivalTime()))
	}
	if d := r.GetOnboardDate(); d != nil {
		out = append(out, change(receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_ONBOARDED, day(d)))
	}
	var later []*receivingv1.EmploymentChange
	for _, cp := range r.GetCheckpoints() {
		c := change(receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_CHECKPOINT, day(cp.GetCheckDate()))
		c.Detail = &receivingv1.EmploymentChange_Checkpoint{Checkpoint: &receivingv1.EmploymentCheckpointDetail{Months: cp.GetMonths(), StillEmployed: cp.GetStillEmployed()}}
		later = append(later, c)
	}
	for _, in := range r.GetIncidents() {
		c := change(receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_INCIDENT, day(in.GetIncidentDate()))
		c.Detail = incidentDetail(in)
		later = append(later, c)
	}
	if d := r.GetLeftDate(); d != nil {
		c := change(receivingv1.EmploymentChangeKind_EMPLOYMENT_CHANGE_KIND_LEFT_JOB, day(d))
		c.Detail = &receivingv1.EmploymentChange_LeftJob{LeftJob: &receivingv1.LeftJobDetail{Reason: r.GetLeftReason()}}
		later = append(later, c)
	}
	slices.SortStableFunc(later, func(a, b *receivingv1.EmploymentChange) int {
		return a.GetOccurTime().AsTime().Compare(b.GetOccurTime().AsTime())
	})
	return append(out, later...)
}

// BuildEmploymentFeeds fills the employment feeds (Employment) of a file older than receiving
// schema version 5 from its stored employment records: every fact on file (tripFacts) becomes
// one change of the feed of its worker's sending province, committed at now, worker by worker
// (in worker-id order) and each worker's trips in the order they were announced (the index of
// trips), so a follower applying the feed in order sees every trip of a worker after the one
// before. Revisions start at 1 per province. What a record no longer shows is not rebuilt (a
// NO_SHOW that became a late ARRIVED is one ARRIVED; a trip older than schema version 4 that a
// later one overwrote). Feeds that already have changes are left as they are. It returns how
// many changes it appended.
func BuildEmploymentFeeds(tx *bbolt.Tx, now time.Time) (int, error) {
	if tx.Bucket(recordTable.Name()) == nil || tx.Bucket(tripsBucket) == nil {
		return 0, nil
	}
	if _, err := tx.CreateBucketIfNotExists(Employment.Table.Name()); err != nil {
		return 0, err
	}
	var workers []string
	if err := tx.Bucket(tripsBucket).ForEach(func(k, _ []byte) error {
		workers = append(workers, string(k))
		return nil
	}); err != nil {
		return 0, err
	}
	filled := map[string]bool{} // provinces whose feed had changes before
	n := 0
	for _, w := range workers {
		for _, batchID := range trips(tx, w) {
			r, ok, err := findRecord(tx, w, batchID)
			if err != nil {
				return n, err
			}
			if !ok {
				continue
			}
			f := Employment.Of(r.GetSendingRegion())
			if _, seen := filled[r.GetSendingRegion()]; !seen {
				filled[r.GetSendingRegion()] = f.Head(tx) > 0
			}
			if filled[r.GetSendingRegion()] {
				continue
			}
			b, _, err := batchTable.Get(tx, []byte(batchID))
			if err != nil {
				return n, err
			}
			vac, err := tripVacancy(tx, r)
			if err != nil {
				return n, err
			}
			for _, c := range tripFacts(r, b, vac, now) {
				if _, err := f.Append(tx, func(rev int64) *receivingv1.EmploymentChange { c.Revision = rev; return c }); err != nil {
					return n, err
				}
				n++
			}
		}
	}
	return n, nil
}
