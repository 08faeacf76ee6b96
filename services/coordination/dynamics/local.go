package dynamics

// The local employers the sending provinces report (ReportLocalEmployers), for the national
// recovery rate. Storage: BucketLocalEmployers, local employer id (`{sending code}-L...`, so a
// province's employers share the prefix `{code}-`) -> coordinationv1.LocalEmployerState, the
// state with the highest version reported.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/coordination/check"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/outatwork"
	"github.com/eastwest/labourlink/services/platform/store"
)

// BucketLocalEmployers is the bucket of the reported local employers. The string is that of
// the files on disk: never change it.
var BucketLocalEmployers = []byte("localEmployers")

// Buckets are the dynamics' buckets, for the coordination service's store.Schema.
var Buckets = [][]byte{BucketLocalEmployers}

var localEmployers = store.NewTable[*coordinationv1.LocalEmployerState](BucketLocalEmployers)

// MaxLocalEmployersPerCall is the most states one ReportLocalEmployers call carries.
const MaxLocalEmployersPerCall = 1000

// localEmployerPrefix is the start of a local employer's resource name.
const localEmployerPrefix = "localEmployers/"

// checkReport adds the violations of a ReportLocalEmployersRequest to v.
func (x *Server) checkReport(v *apierror.Violations, r *coordinationv1.ReportLocalEmployersRequest) {
	store.CheckRequestID(v, "request_id", r.GetRequestId())
	region := r.GetReporterRegion()
	check.Province(v, x.regions, "reporter_region", region, true)
	switch n := len(r.GetEmployers()); {
	case n == 0:
		v.Add("employers", "is required: at least one employer")
	case n > MaxLocalEmployersPerCall:
		v.Addf("employers", "has %d employers: at most %d in one call", n, MaxLocalEmployersPerCall)
	}
	for i, e := range r.GetEmployers() {
		f := fmt.Sprintf("employers[%d].", i)
		if id, ok := strings.CutPrefix(e.GetName(), localEmployerPrefix); !ok || !strings.HasPrefix(id, region+"-L") || strings.ContainsAny(id, "/ ") {
			v.Addf(f+"name", "must be localEmployers/{local_employer_id} with an id of the reporter, such as localEmployers/%s-L00000001", region)
		}
		if _, ok := sendingv1.LocalEmployerKind_name[int32(e.GetKind())]; !ok || e.GetKind() == sendingv1.LocalEmployerKind_LOCAL_EMPLOYER_KIND_UNSPECIFIED {
			v.Add(f+"kind", "is required: POVERTY_ALLEVIATION_WORKSHOP, LEADING_ENTERPRISE or PUBLIC_WELFARE_POST")
		}
		if c := e.GetCounty(); !x.regions.IsCounty(c) || x.regions.ProvinceOf(c) != region {
			v.Addf(f+"county", "%q is not a GB/T 2260 county of the reporter %s", c, region)
		}
		if e.GetCapacity() < 0 {
			v.Add(f+"capacity", "must not be negative")
		}
		if e.GetCreateTime() == nil || e.GetCreateTime().CheckValid() != nil {
			v.Add(f+"create_time", "is required: when the employer was registered")
		}
		for j, c := range e.GetResumptionChanges() {
			if c.GetChangeTime() == nil || c.GetChangeTime().CheckValid() != nil {
				v.Add(fmt.Sprintf("%sresumption_changes[%d].change_time", f, j), "is required: when the change was recorded")
			}
		}
		if e.GetVersion() < 1 {
			v.Add(f+"version", "must be at least 1")
		}
	}
}

// ReportLocalEmployers keeps each state that is newer than the one kept for its employer.
func (x *Server) ReportLocalEmployers(ctx context.Context, req *coordinationv1.ReportLocalEmployersRequest) (*coordinationv1.ReportLocalEmployersResponse, error) {
	resp := &coordinationv1.ReportLocalEmployersResponse{}
	if err := x.w.Write(ctx, x.reportLocalEmployers, x.now(), req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

func (x *Server) applyReportLocalEmployers(tx *bbolt.Tx, _ time.Time, req *coordinationv1.ReportLocalEmployersRequest, resp *coordinationv1.ReportLocalEmployersResponse) error {
	resp.Recorded, resp.Stale = 0, 0
	for _, e := range req.GetEmployers() {
		key := []byte(strings.TrimPrefix(e.GetName(), localEmployerPrefix))
		kept, ok, err := localEmployers.Get(tx, key)
		if err != nil {
			return err
		}
		if ok && kept.GetVersion() >= e.GetVersion() {
			resp.Stale++
			continue
		}
		if err := localEmployers.Put(tx, key, e); err != nil {
			return err
		}
		resp.Recorded++
	}
	return nil
}

// addRecovery sets resp's recovery rates as of the end of its day, from the states kept of
// the employers of sendingRegion (all when empty): together, and by sending province.
func (x *Server) addRecovery(tx *bbolt.Tx, sendingRegion string, resp *coordinationv1.GetNationalEmploymentDynamicsResponse) error {
	at := outatwork.EndOfDay(resp.GetAsOf())
	all := outatwork.NewRecovery(at)
	byRegion := map[string]*outatwork.Recovery{}
	var order []string // regions in key order: ids begin with the region code
	var r store.Range
	if sendingRegion != "" {
		r.Prefix = []byte(sendingRegion + "-")
	}
	err := localEmployers.Scan(tx, r, func(key []byte, e *coordinationv1.LocalEmployerState) (bool, error) {
		region, _, _ := strings.Cut(string(key), "-")
		rr := byRegion[region]
		if rr == nil {
			rr = outatwork.NewRecovery(at)
			byRegion[region] = rr
			order = append(order, region)
		}
		all.Add(e.GetKind(), e.GetCreateTime(), e.GetResumed(), e.GetResumptionChanges())
		rr.Add(e.GetKind(), e.GetCreateTime(), e.GetResumed(), e.GetResumptionChanges())
		return true, nil
	})
	if err != nil {
		return err
	}
	resp.RecoveryByKind, resp.RecoveryTotal = all.Rates()
	for _, region := range order {
		rr := byRegion[region]
		if rr.Empty() {
			continue
		}
		row := &coordinationv1.RegionRecovery{SendingRegion: region, DisplayName: x.regions.Name(region)}
		row.RecoveryByKind, row.RecoveryTotal = rr.Rates()
		resp.RecoveryBySendingRegion = append(resp.RecoveryBySendingRegion, row)
	}
	return nil
}
