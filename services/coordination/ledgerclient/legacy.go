package ledgerclient

import (
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
)

// The LedgerEvent fields before the per-kind details (now reserved): months (11, int32),
// still_employed (12, bool) and detail (13, string).
const (
	legacyMonths        protowire.Number = 11
	legacyStillEmployed protowire.Number = 12
	legacyDetail        protowire.Number = 13
)

// UpgradeEvent converts an event written before the per-kind details (a stored ledger event of
// schema version 1, an event still in a sending or receiving outbox after an upgrade, a report
// from a reporter not yet upgraded): the old fields months, still_employed and detail, which the
// current code reads as unknown fields, become the details of the event's kind
// (employment_checkpoint, left_job.reason, incident.kind). It reports whether ev changed.
//
// An event with details already keeps them. An old field the kind has no detail for (a detail on
// a DEPARTED event, which the ledger used to take) stays an unknown field: it is kept, not shown.
// The conversion is a function of the bytes alone, so the same old event converted twice (in
// the relay and in the ledger, or in a migration and in a later retry) is the same fact.
func UpgradeEvent(ev *coordinationv1.LedgerEvent) bool {
	unknown := ev.ProtoReflect().GetUnknown()
	if len(unknown) == 0 {
		return false
	}
	var (
		months                  int32
		still, haveCP, haveText bool
		detail                  string
		rest                    []byte
	)
	for b := unknown; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false // not protobuf: leave it as it is
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return false
		}
		field, val := b[:n+m], b[n:n+m]
		b = b[n+m:]
		switch {
		case num == legacyMonths && typ == protowire.VarintType:
			v, _ := protowire.ConsumeVarint(val)
			months, haveCP = int32(v), true
			continue
		case num == legacyStillEmployed && typ == protowire.VarintType:
			v, _ := protowire.ConsumeVarint(val)
			still, haveCP = v != 0, true
			continue
		case num == legacyDetail && typ == protowire.BytesType:
			v, _ := protowire.ConsumeBytes(val)
			detail, haveText = string(v), true
			continue
		}
		rest = append(rest, field...)
	}
	if (!haveCP && !haveText) || ev.GetDetails() != nil {
		return false // nothing old, or already in the new shape: leave it alone
	}
	converted := false
	switch ev.GetKind() {
	case coordinationv1.EventKind_EVENT_KIND_EMPLOYMENT_CHECKPOINT:
		if haveCP {
			ev.Details = &coordinationv1.LedgerEvent_EmploymentCheckpoint{EmploymentCheckpoint: &coordinationv1.EmploymentCheckpointDetails{Months: months, StillEmployed: still}}
			haveCP, converted = false, true
		}
	case coordinationv1.EventKind_EVENT_KIND_LEFT_JOB:
		if haveText {
			ev.Details = &coordinationv1.LedgerEvent_LeftJob{LeftJob: &coordinationv1.LeftJobDetails{Reason: detail}}
			haveText, converted = false, true
		}
	case coordinationv1.EventKind_EVENT_KIND_INCIDENT:
		if haveText {
			ev.Details = &coordinationv1.LedgerEvent_Incident{Incident: &coordinationv1.IncidentDetails{Kind: detail}}
			haveText, converted = false, true
		}
	}
	if !converted {
		return false
	}
	// What the kind has no details for stays, re-encoded the way the old writer did.
	if haveCP {
		if months != 0 {
			rest = protowire.AppendVarint(protowire.AppendTag(rest, legacyMonths, protowire.VarintType), uint64(int64(months)))
		}
		if still {
			rest = protowire.AppendVarint(protowire.AppendTag(rest, legacyStillEmployed, protowire.VarintType), 1)
		}
	}
	if haveText {
		rest = protowire.AppendString(protowire.AppendTag(rest, legacyDetail, protowire.BytesType), detail)
	}
	ev.ProtoReflect().SetUnknown(rest)
	return true
}

// Upgraded returns ev converted by UpgradeEvent: a converted copy if it had old fields to
// convert (ev is left as it is), else ev.
func Upgraded(ev *coordinationv1.LedgerEvent) *coordinationv1.LedgerEvent {
	if len(ev.ProtoReflect().GetUnknown()) == 0 {
		return ev
	}
	c := proto.Clone(ev).(*coordinationv1.LedgerEvent)
	if !UpgradeEvent(c) {
		return ev
	}
	return c
}
