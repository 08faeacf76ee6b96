// Package returnees is the take-over of workers back home (返乡) in a sending province
// (ReturneeService): the local employers the province registers — poverty-alleviation
// workshops, leading enterprises, public-welfare posts — with their capacity and whether they
// have resumed work, and the placement of returnees with them. The placements themselves are
// the workers' (Worker.local_placements, services/sending/roster/local.go): a placement begins
// here (PlaceWorkerLocally) and ends with any status change out of PLACED_LOCALLY.
package returnees

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending/roster"
)

const (
	// maxDisplayNameLen bounds LocalEmployer.display_name, in characters.
	maxDisplayNameLen = 100
	// maxCapacity bounds LocalEmployer.capacity.
	maxCapacity = 100_000
	// maxStartAhead is how far ahead a placement may start.
	maxStartAhead = 30
)

// counterEmployerIDs numbers the local employers (store counters bucket).
var counterEmployerIDs = []byte("localEmployerIDs")

// updatablePaths are the update_mask paths UpdateLocalEmployer takes.
var updatablePaths = []string{"display_name", "county", "capacity", "resumed"}

// Config configures the take-over.
type Config struct {
	// Region is the 6-digit code of this sending province, such as 520000.
	Region string
	// Regions is the code table (regions.Default() when nil).
	Regions *regions.Table
	// Now is the clock; nil for time.Now.
	Now func() time.Time
	// Relays are told of new outbox entries (the employers' states for the coordination
	// service); nil: none.
	Relays *outbox.Set
}

// Service is the take-over of one sending province.
type Service struct {
	db     *store.DB
	lg     *zap.Logger
	cfg    Config
	roster *roster.Service
}

// New returns the take-over over db (whose schema holds Buckets()) and the roster rs.
func New(db *store.DB, lg *zap.Logger, cfg Config, rs *roster.Service) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Regions == nil {
		cfg.Regions = regions.Default()
	}
	if lg == nil {
		lg = zap.NewNop()
	}
	return &Service{db: db, lg: lg, cfg: cfg, roster: rs}
}

// Register registers the ReturneeService on gs.
func (s *Service) Register(gs *grpc.Server) {
	sendingv1.RegisterReturneeServiceServer(gs, &server{s: s})
}

type server struct {
	sendingv1.UnimplementedReturneeServiceServer
	s *Service
}

// parseEmployerName returns the id of a `localEmployers/{id}` name, or a reason it is not one.
func (s *Service) parseEmployerName(name string) (string, string) {
	id, ok := strings.CutPrefix(name, namePrefix)
	if !ok || !strings.HasPrefix(id, s.cfg.Region+"-L") || strings.ContainsAny(id, "/ ") {
		return "", fmt.Sprintf("must be localEmployers/{local_employer_id}, such as localEmployers/%s-L00000001", s.cfg.Region)
	}
	return id, ""
}

// checkFields adds violations on the employer fields named in paths (all when paths is nil) to v,
// under prefix.
func (s *Service) checkFields(v *apierror.Violations, prefix string, e *sendingv1.LocalEmployer, paths []string) {
	has := func(p string) bool { return paths == nil || slices.Contains(paths, p) }
	if has("display_name") {
		switch n := utf8.RuneCountInString(strings.TrimSpace(e.GetDisplayName())); {
		case n == 0:
			v.Add(prefix+"display_name", "is required: what the employer is called")
		case n > maxDisplayNameLen:
			v.Addf(prefix+"display_name", "is longer than %d characters", maxDisplayNameLen)
		}
	}
	if paths == nil {
		if _, ok := sendingv1.LocalEmployerKind_name[int32(e.GetKind())]; !ok || e.GetKind() == sendingv1.LocalEmployerKind_LOCAL_EMPLOYER_KIND_UNSPECIFIED {
			v.Add(prefix+"kind", "is required: POVERTY_ALLEVIATION_WORKSHOP, LEADING_ENTERPRISE or PUBLIC_WELFARE_POST")
		}
	}
	if has("county") {
		if c := e.GetCounty(); !s.cfg.Regions.IsCounty(c) || s.cfg.Regions.ProvinceOf(c) != s.cfg.Region {
			v.Addf(prefix+"county", "%q is not a GB/T 2260 county of %s (%s)", c, s.cfg.Region, s.cfg.Regions.Name(s.cfg.Region))
		}
	}
	if has("capacity") {
		if c := e.GetCapacity(); c < 1 || c > maxCapacity {
			v.Addf(prefix+"capacity", "is %d; it must be 1 to %d", c, maxCapacity)
		}
	}
}

// ValidateRequest checks a request before its handler runs (grpcserver's validation step).
func (x *server) ValidateRequest(fullMethod string, req any) error {
	s := x.s
	var v apierror.Violations
	switch r := req.(type) {
	case *sendingv1.CreateLocalEmployerRequest:
		if r.GetLocalEmployer() == nil {
			v.Add("local_employer", "is required")
		} else {
			s.checkFields(&v, "local_employer.", r.GetLocalEmployer(), nil)
		}
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
	case *sendingv1.GetLocalEmployerRequest:
		if _, reason := s.parseEmployerName(r.GetName()); reason != "" {
			v.Add("name", reason)
		}
	case *sendingv1.ListLocalEmployersRequest:
		if _, ok := sendingv1.LocalEmployerKind_name[int32(r.GetKind())]; !ok {
			v.Add("kind", "is not a LocalEmployerKind")
		}
		if c := r.GetCounty(); c != "" && !s.cfg.Regions.IsCounty(c) {
			v.Addf("county", "%q is not a GB/T 2260 county code", c)
		}
		employersSize.Check(&v, r.GetPageSize())
		employersListing(r).Check(&v, r.GetPageToken())
	case *sendingv1.UpdateLocalEmployerRequest:
		e := r.GetLocalEmployer()
		if _, reason := s.parseEmployerName(e.GetName()); reason != "" {
			v.Add("local_employer.name", reason)
		}
		paths := r.GetUpdateMask().GetPaths()
		if len(paths) == 0 {
			v.Add("update_mask", "is required: the fields to change ("+strings.Join(updatablePaths, ", ")+")")
		}
		for _, p := range paths {
			switch {
			case p == "kind":
				v.Add("update_mask", "kind cannot change: register the employer again under its new kind")
			case !slices.Contains(updatablePaths, p):
				v.Addf("update_mask", "%q is not a field UpdateLocalEmployer changes (%s)", p, strings.Join(updatablePaths, ", "))
			}
		}
		if len(paths) > 0 {
			s.checkFields(&v, "local_employer.", e, paths)
		}
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
	case *sendingv1.PlaceWorkerLocallyRequest:
		if _, reason := roster.ParseWorkerName(r.GetWorker()); reason != "" {
			v.Add("worker", reason)
		}
		if _, reason := s.parseEmployerName(r.GetLocalEmployer()); reason != "" {
			v.Add("local_employer", reason)
		}
		if d := r.GetStartDate(); d != nil {
			if p := civil.Problem(d); p != "" {
				v.Add("start_date", p)
			} else if civil.Compare(d, civil.AddDays(civil.Today(s.cfg.Now()), maxStartAhead)) > 0 {
				v.Addf("start_date", "%s is more than %d days ahead", civil.Format(d), maxStartAhead)
			}
		}
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
	case *sendingv1.GetLocalEmploymentSummaryRequest:
		if c := r.GetCounty(); c != "" && !s.cfg.Regions.IsCounty(c) {
			v.Addf("county", "%q is not a GB/T 2260 county code", c)
		}
	default:
		return apierror.NotValidated(req)
	}
	return v.Err()
}

// CreateLocalEmployer registers a local employer under a new id.
func (x *server) CreateLocalEmployer(ctx context.Context, req *sendingv1.CreateLocalEmployerRequest) (*sendingv1.CreateLocalEmployerResponse, error) {
	s := x.s
	now := s.cfg.Now()
	resp := &sendingv1.CreateLocalEmployerResponse{}
	err := s.db.UpdateOnce(now, sendingv1.ReturneeService_CreateLocalEmployer_FullMethodName, req, resp, func(tx *bbolt.Tx) error {
		n, err := store.NextCounter(tx, counterEmployerIDs)
		if err != nil {
			return err
		}
		in := req.GetLocalEmployer()
		e := &sendingv1.LocalEmployer{
			LocalEmployerId: fmt.Sprintf("%s-L%08d", s.cfg.Region, n),
			DisplayName:     strings.TrimSpace(in.GetDisplayName()), Kind: in.GetKind(), County: in.GetCounty(),
			Capacity: in.GetCapacity(), Resumed: in.GetResumed(),
			CreateTime: timestamppb.New(now), UpdateTime: timestamppb.New(now),
			ResumptionChanges: []*sendingv1.ResumptionChange{{Resumed: in.GetResumed(), ChangeTime: timestamppb.New(now)}},
		}
		if err := putEmployer(ctx, tx, now, e); err != nil {
			return err
		}
		resp.LocalEmployer, err = withPlaced(tx, e.GetLocalEmployerId(), e)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.cfg.Relays.Notify(ledgerclient.LocalEmployersDestination)
	return resp, nil
}

// GetLocalEmployer reads one employer.
func (x *server) GetLocalEmployer(_ context.Context, req *sendingv1.GetLocalEmployerRequest) (*sendingv1.GetLocalEmployerResponse, error) {
	id, _ := x.s.parseEmployerName(req.GetName())
	resp := &sendingv1.GetLocalEmployerResponse{}
	err := x.s.db.View(func(tx *bbolt.Tx) error {
		var err error
		resp.LocalEmployer, err = getEmployer(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// ListLocalEmployers pages through the employers in id order.
func (x *server) ListLocalEmployers(_ context.Context, req *sendingv1.ListLocalEmployersRequest) (*sendingv1.ListLocalEmployersResponse, error) {
	listing := employersListing(req)
	after, err := listing.Decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &sendingv1.ListLocalEmployersResponse{}
	err = x.s.db.View(func(tx *bbolt.Tx) error {
		page, err := employers.Page(tx, store.Range{After: after}, employersSize.Of(req.GetPageSize()), func(_ []byte, e *sendingv1.LocalEmployer) bool {
			return (req.GetKind() == 0 || e.GetKind() == req.GetKind()) && (req.GetCounty() == "" || e.GetCounty() == req.GetCounty()) &&
				(!req.GetResumedOnly() || e.GetResumed())
		})
		if err != nil {
			return err
		}
		for _, e := range page.Items {
			if _, err := withPlaced(tx, e.GetLocalEmployerId(), e); err != nil {
				return err
			}
		}
		resp.LocalEmployers = page.Items
		if page.Last != nil {
			resp.NextPageToken = listing.Token(page.Last)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// UpdateLocalEmployer changes the fields of update_mask.
func (x *server) UpdateLocalEmployer(ctx context.Context, req *sendingv1.UpdateLocalEmployerRequest) (*sendingv1.UpdateLocalEmployerResponse, error) {
	s := x.s
	in := req.GetLocalEmployer()
	id, _ := s.parseEmployerName(in.GetName())
	now := s.cfg.Now()
	resp := &sendingv1.UpdateLocalEmployerResponse{}
	err := s.db.UpdateOnce(now, sendingv1.ReturneeService_UpdateLocalEmployer_FullMethodName, req, resp, func(tx *bbolt.Tx) error {
		e, err := getEmployer(tx, id)
		if err != nil {
			return err
		}
		if etag := in.GetEtag(); etag != "" && etag != e.GetEtag() {
			return apierror.Aborted(commonv1.ErrorReason_ERROR_REASON_ETAG_MISMATCH,
				"local employer %s changed since it was read (etag %q, now %q): read it again and redo the change", e.GetName(), etag, e.GetEtag())
		}
		for _, p := range req.GetUpdateMask().GetPaths() {
			switch p {
			case "display_name":
				e.DisplayName = strings.TrimSpace(in.GetDisplayName())
			case "county":
				e.County = in.GetCounty()
			case "capacity":
				if in.GetCapacity() < e.GetPlaced() {
					return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_LOCAL_EMPLOYER_FULL,
						"local employer %s has %d workers placed now: its capacity cannot go below that (asked %d)", e.GetName(), e.GetPlaced(), in.GetCapacity())
				}
				e.Capacity = in.GetCapacity()
			case "resumed":
				if in.GetResumed() != e.GetResumed() {
					e.ResumptionChanges = append(e.ResumptionChanges, &sendingv1.ResumptionChange{Resumed: in.GetResumed(), ChangeTime: timestamppb.New(now)})
				}
				e.Resumed = in.GetResumed()
			}
		}
		e.UpdateTime = timestamppb.New(now)
		if err := putEmployer(ctx, tx, now, e); err != nil {
			return err
		}
		resp.LocalEmployer = e
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.cfg.Relays.Notify(ledgerclient.LocalEmployersDestination)
	return resp, nil
}

// PlaceWorkerLocally places a returnee with a local employer that has resumed work and has room.
func (x *server) PlaceWorkerLocally(_ context.Context, req *sendingv1.PlaceWorkerLocallyRequest) (*sendingv1.PlaceWorkerLocallyResponse, error) {
	s := x.s
	workerID, _ := roster.ParseWorkerName(req.GetWorker())
	employerID, _ := s.parseEmployerName(req.GetLocalEmployer())
	now := s.cfg.Now()
	start := req.GetStartDate()
	if start == nil {
		start = civil.Today(now)
	}
	resp := &sendingv1.PlaceWorkerLocallyResponse{}
	err := s.db.UpdateOnce(now, sendingv1.ReturneeService_PlaceWorkerLocally_FullMethodName, req, resp, func(tx *bbolt.Tx) error {
		e, err := getEmployer(tx, employerID)
		if err != nil {
			return err
		}
		w, err := roster.Read(tx, workerID)
		if err != nil {
			return err
		}
		if err := roster.CheckMove(w, sendingv1.WorkerStatus_WORKER_STATUS_PLACED_LOCALLY); err != nil {
			return err
		}
		if trips := w.GetTrips(); len(trips) > 0 {
			if back := trips[len(trips)-1].GetReturnTime(); back != nil && civil.Compare(start, civil.Today(back.AsTime())) < 0 {
				var v apierror.Violations
				v.Addf("start_date", "%s is before the worker came home (%s)", civil.Format(start), civil.Format(civil.Today(back.AsTime())))
				return v.Err()
			}
		}
		if !e.GetResumed() {
			return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_LOCAL_EMPLOYER_NOT_RESUMED,
				"local employer %s (%s) has not resumed work: record its resumption first", e.GetName(), e.GetDisplayName())
		}
		if e.GetPlaced() >= e.GetCapacity() {
			return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_LOCAL_EMPLOYER_FULL,
				"local employer %s (%s) has %d of %d places taken", e.GetName(), e.GetDisplayName(), e.GetPlaced(), e.GetCapacity())
		}
		w, err = s.roster.PlaceLocally(tx, workerID, &sendingv1.LocalPlacement{LocalEmployer: e.GetName(), Kind: e.GetKind(), StartDate: start})
		if err != nil {
			return err
		}
		e.Placed++
		resp.Worker = roster.Masked(w, sendingv1.WorkerView_WORKER_VIEW_BASIC)
		resp.LocalEmployer = e
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// GetLocalEmploymentSummary counts employers and placements by kind.
func (x *server) GetLocalEmploymentSummary(_ context.Context, req *sendingv1.GetLocalEmploymentSummaryRequest) (*sendingv1.GetLocalEmploymentSummaryResponse, error) {
	byKind := map[sendingv1.LocalEmployerKind]*sendingv1.LocalEmploymentCount{}
	total := &sendingv1.LocalEmploymentCount{}
	err := x.s.db.View(func(tx *bbolt.Tx) error {
		return employers.Scan(tx, store.Range{}, func(_ []byte, e *sendingv1.LocalEmployer) (bool, error) {
			if c := req.GetCounty(); c != "" && e.GetCounty() != c {
				return true, nil
			}
			if _, err := withPlaced(tx, e.GetLocalEmployerId(), e); err != nil {
				return false, err
			}
			k := byKind[e.GetKind()]
			if k == nil {
				k = &sendingv1.LocalEmploymentCount{Kind: e.GetKind()}
				byKind[e.GetKind()] = k
			}
			for _, c := range []*sendingv1.LocalEmploymentCount{k, total} {
				c.Registered++
				if e.GetResumed() {
					c.Resumed++
				}
				c.Capacity += int64(e.GetCapacity())
				c.Placed += int64(e.GetPlaced())
			}
			return true, nil
		})
	})
	if err != nil {
		return nil, err
	}
	resp := &sendingv1.GetLocalEmploymentSummaryResponse{Total: total}
	for _, k := range slices.Sorted(maps.Keys(byKind)) {
		resp.ByKind = append(resp.ByKind, byKind[k])
	}
	return resp, nil
}
