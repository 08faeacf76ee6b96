package ledger

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/privacy"
)

const (
	departed  = coordinationv1.EventKind_EVENT_KIND_DEPARTED
	arrived   = coordinationv1.EventKind_EVENT_KIND_ARRIVED
	noShow    = coordinationv1.EventKind_EVENT_KIND_NO_SHOW
	onboarded = coordinationv1.EventKind_EVENT_KIND_ONBOARDED
)

// t0 is 2025-03-01 08:00 CST.
var t0 = time.Date(2025, 3, 1, 8, 0, 0, 0, civil.Zone)

// ev builds a ledger event from Guizhou to Guangdong; reporter_region follows from the kind.
func ev(id string, kind coordinationv1.EventKind, batch, worker string, at time.Time) *coordinationv1.LedgerEvent {
	e := &coordinationv1.LedgerEvent{
		EventId:         id,
		Kind:            kind,
		SendingRegion:   "520000",
		ReceivingRegion: "440000",
		WorkerId:        worker,
		BatchId:         batch,
		OccurTime:       timestamppb.New(at),
	}
	e.ReporterRegion = e.ReceivingRegion
	if SendingSide(kind) {
		e.ReporterRegion = e.SendingRegion
	}
	return e
}

// FuzzValidateEvent feeds arbitrary events (outside input) to the validation: it must not
// panic, and an event it accepts has what reconciliation relies on.
func FuzzValidateEvent(f *testing.F) {
	seed, _ := proto.Marshal(ev("e1", departed, "B1", "w1", t0))
	f.Add(seed)
	idn, _ := proto.Marshal(ev("e2", arrived, "B1", "11010519491231002X", t0))
	f.Add(idn)
	table := regions.Default()
	f.Fuzz(func(t *testing.T, data []byte) {
		e := &coordinationv1.LedgerEvent{}
		if proto.Unmarshal(data, e) != nil {
			return
		}
		var v apierror.Violations
		validateEvent(&v, table, e, t0)
		if v.Len() > 0 {
			return
		}
		if privacy.LooksLikeIDNumber(e.GetWorkerId()) || e.GetOccurTime() == nil || e.GetKind() == 0 ||
			(NeedsBatch(e.GetKind()) && e.GetBatchId() == "") || e.GetSendingRegion() == e.GetReceivingRegion() {
			t.Fatalf("accepted %v", e)
		}
	})
}
