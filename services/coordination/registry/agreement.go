package registry

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/apierror"
)

// Defaults of a programme agreement's unset fields (the grace period's default is the ledger's
// configured one).
const (
	DefaultCheckpointToleranceDays = 15
	DefaultIncidentWorkingDays     = 1
	DefaultAbandonmentWorkingDays  = 5
)

// Limits of a programme agreement's fields.
const (
	minGrace, maxGrace             = time.Minute, 30 * 24 * time.Hour
	maxToleranceDays               = 90
	maxIncidentDays, maxAbsentDays = 10, 30
)

// Agreement returns the stored programme agreement of pairing p (nil when unset or unpaired).
func Agreement(tx *bbolt.Tx, p regions.Pairing) (*coordinationv1.ProgrammeAgreement, error) {
	msg, ok, err := pairingsTable.Get(tx, pairingKey(p))
	if err != nil || !ok {
		return nil, err
	}
	return msg.GetAgreement(), nil
}

// checkAgreement adds the violations of an agreement (field paths under prefix).
func checkAgreement(v *apierror.Violations, prefix string, a *coordinationv1.ProgrammeAgreement) {
	if a == nil {
		v.Add(prefix, "is required")
		return
	}
	if g := a.GetArrivalGracePeriod(); g != nil {
		if g.CheckValid() != nil || g.AsDuration() < minGrace || g.AsDuration() > maxGrace {
			v.Add(prefix+".arrival_grace_period", "must be 1 minute to 30 days (unset: the service's -grace-period)")
		}
	}
	in := func(field string, n int32, max int32) {
		if n < 0 || n > max {
			v.Add(prefix+"."+field, fmt.Sprintf("must be 1 to %d (0: the default)", max))
		}
	}
	in("checkpoint_tolerance_days", a.GetCheckpointToleranceDays(), maxToleranceDays)
	in("incident_report_working_days", a.GetIncidentReportWorkingDays(), maxIncidentDays)
	in("abandonment_working_days", a.GetAbandonmentWorkingDays(), maxAbsentDays)
}

// SetPairingAgreement stores a pairing's programme agreement, then lets the ledger reconcile the
// pairing's batches under it in the same transaction (Server.OnAgreement).
func (x *Server) SetPairingAgreement(ctx context.Context, req *coordinationv1.SetPairingAgreementRequest) (*coordinationv1.SetPairingAgreementResponse, error) {
	resp := &coordinationv1.SetPairingAgreementResponse{}
	if err := x.w.Write(ctx, x.setAgreement, x.now(), req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

func (x *Server) applySetPairingAgreement(tx *bbolt.Tx, now time.Time, req *coordinationv1.SetPairingAgreementRequest, resp *coordinationv1.SetPairingAgreementResponse) error {
	p, msg, err := x.namedPairing(tx, req.GetName())
	if err != nil {
		return err
	}
	msg.Agreement = req.GetAgreement()
	if err := pairingsTable.Put(tx, pairingKey(p), msg); err != nil {
		return err
	}
	resp.Pairing = msg
	if x.OnAgreement != nil {
		return x.OnAgreement(tx, p, now)
	}
	return nil
}
