package transport

// TransportService: point-to-point transport batches for accepted workers.
//
// Storage (store.go): BucketBatches, batch id -> sendingv1.Batch. A batch id is
// "<sending region>-B<8-digit sequence>", unique in the federation.
//
// Every change is one transaction with its worker moves and outbox entries:
//   - PlanBatches / CreateBatch: batches PLANNED, workers ACCEPTED -> SCHEDULED, and per batch an
//     AnnounceBatchRequest (the manifest) to "receiving/<code>".
//   - RecordDeparture: boarded workers SCHEDULED -> DEPARTED, each with one DEPARTED ledger
//     event to "coordination" (event id "<region>:departed:<batch_id>:<worker_id>", so the same
//     fact is one event however often it is reported); no-shows back to ACCEPTED (the place is
//     kept) or AVAILABLE (the place is given up: the proposal becomes REJECTED and a
//     WithdrawCandidateRequest goes to the receiving service); and a ReportBatchDepartureRequest
//     with who boarded.
//   - CancelBatch: PLANNED -> CANCELLED, workers SCHEDULED -> ACCEPTED, and a
//     CancelIntakeBatchRequest to "receiving/<code>" (after the batch's AnnounceBatchRequest in
//     the same outbox), so that the receiving side no longer expects the workers.
//
// Planning groups accepted workers by destination (receiving province, work county) and start
// date, and lets services/sending/transport/batchplan fill vehicles: as few as possible (ceil(n/seats) per
// group), home counties kept together where that costs no extra vehicle.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/types/known/timestamppb"

	"errors"
	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/personname"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending/demand"
	"github.com/eastwest/labourlink/services/sending/matching"
	"github.com/eastwest/labourlink/services/sending/roster"
	"github.com/eastwest/labourlink/services/sending/transport/batchplan"
	"go.uber.org/zap"
)

// Seats are the seats per vehicle of each transport mode.
type Seats struct {
	Bus, Train, Flight int
}

// DefaultSeats: a coach bus, one train coach (hard-seat car), a chartered narrow-body flight.
var DefaultSeats = Seats{Bus: 45, Train: 118, Flight: 180}

func (s Seats) withDefaults() Seats {
	if s.Bus <= 0 {
		s.Bus = DefaultSeats.Bus
	}
	if s.Train <= 0 {
		s.Train = DefaultSeats.Train
	}
	if s.Flight <= 0 {
		s.Flight = DefaultSeats.Flight
	}
	return s
}

// of returns the seats of mode (a bus for UNSPECIFIED).
func (s Seats) of(mode commonv1.TransportMode) int {
	switch mode {
	case commonv1.TransportMode_TRANSPORT_MODE_TRAIN:
		return s.Train
	case commonv1.TransportMode_TRANSPORT_MODE_FLIGHT:
		return s.Flight
	}
	return s.Bus
}

// travelTime is the planning estimate from departure to arrival, sent to the receiving service
// as the expected arrival: door to door, with the transfers at both ends.
var travelTime = map[commonv1.TransportMode]time.Duration{
	commonv1.TransportMode_TRANSPORT_MODE_BUS:    36 * time.Hour,
	commonv1.TransportMode_TRANSPORT_MODE_TRAIN:  30 * time.Hour,
	commonv1.TransportMode_TRANSPORT_MODE_FLIGHT: 8 * time.Hour,
}

const (
	batchPlanned   = sendingv1.BatchState_BATCH_STATE_PLANNED
	batchDeparted  = sendingv1.BatchState_BATCH_STATE_DEPARTED
	batchCancelled = sendingv1.BatchState_BATCH_STATE_CANCELLED

	batchNamePrefix = "batches/"
	// maxSeats is the largest vehicle (and manifest) accepted: the receiving service's limit.
	maxSeats = 1000

	maxEscortName    = 50
	maxEscortContact = 100
)

func batchName(id string) string { return batchNamePrefix + id }

// parseBatchName returns the batch id of `batches/{batch_id}`, or a reason it is wrong.
func parseBatchName(name string) (string, string) {
	id, ok := strings.CutPrefix(name, batchNamePrefix)
	if !ok || id == "" || strings.ContainsAny(id, "/ ") {
		return "", "must be batches/{batch_id}, such as batches/520000-B00000001"
	}
	return id, ""
}

// --- validation ---

// ValidateRequest checks TransportService requests before their handlers run.
func (x *transportServer) ValidateRequest(_ string, req any) error {
	s := x.s
	var v apierror.Violations
	switch r := req.(type) {
	case *sendingv1.PlanBatchesRequest:
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
		s.matching.CheckReceivingRegion(&v, "receiving_region", r.GetReceivingRegion(), false)
		if d := r.GetStartDate(); d != nil {
			if reason := roster.CheckDate(d); reason != "" {
				v.Add("start_date", reason)
			}
		}
		checkMode(&v, "mode", r.GetMode())
		checkSeats(&v, "seats", r.Seats)
		checkTime(&v, "planned_departure_time", r.GetPlannedDepartureTime())
		checkEscort(&v, "", r.GetEscortName(), r.GetEscortContact())
	case *sendingv1.CreateBatchRequest:
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
		b := r.GetBatch()
		if b == nil {
			v.Add("batch", "is required")
			break
		}
		checkMode(&v, "batch.mode", b.GetMode())
		checkSeats(&v, "batch.seats", b.Seats)
		checkTime(&v, "batch.planned_departure_time", b.GetPlannedDepartureTime())
		checkEscort(&v, "batch.", b.GetEscortName(), b.GetEscortContact())
		if o := b.GetOrigin(); o != "" && o != s.cfg.Region {
			if err := s.regions.CheckCountyIn(o, s.cfg.Region); err != nil {
				v.Add("batch.origin", err.Error()+" (or give the province code "+s.cfg.Region+")")
			}
		}
		seats := s.seatsOr(b.Seats, b.GetMode()) // as the handler will; the arguments are checked here, before the request id
		switch n := len(b.GetManifest()); {
		case n == 0:
			v.Add("batch.manifest", "must list at least one worker (worker_id of each entry)")
		case seats > 0 && n > seats:
			v.Addf("batch.manifest", "lists %d workers for %d seats", n, seats)
		case n > maxSeats:
			v.Addf("batch.manifest", "lists %d workers; at most %d", n, maxSeats)
		}
		seen := map[string]bool{}
		for i, e := range b.GetManifest() {
			field := fmt.Sprintf("batch.manifest[%d].worker_id", i)
			checkWorkerIDField(&v, field, e.GetWorkerId(), seen)
		}
	case *sendingv1.GetBatchRequest:
		if _, reason := parseBatchName(r.GetName()); reason != "" {
			v.Add("name", reason)
		}
	case *sendingv1.GetBatchManifestRequest:
		if _, reason := parseBatchName(r.GetName()); reason != "" {
			v.Add("name", reason)
		}
	case *sendingv1.ListBatchesRequest:
		if _, ok := sendingv1.BatchState_name[int32(r.GetState())]; !ok {
			v.Add("state", "is not a BatchState")
		}
		s.matching.CheckReceivingRegion(&v, "receiving_region", r.GetReceivingRegion(), false)
		batchesSize.Check(&v, r.GetPageSize())
		batchesListing(r).Check(&v, r.GetPageToken())
	case *sendingv1.RecordDepartureRequest:
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
		if _, reason := parseBatchName(r.GetName()); reason != "" {
			v.Add("name", reason)
		}
		seen := map[string]bool{}
		for i, id := range r.GetBoardedWorkerIds() {
			checkWorkerIDField(&v, fmt.Sprintf("boarded_worker_ids[%d]", i), id, seen)
		}
		if _, ok := sendingv1.NoShowDisposition_name[int32(r.GetNoShowDisposition())]; !ok {
			v.Add("no_show_disposition", "is not a NoShowDisposition")
		}
		checkTime(&v, "actual_departure_time", r.GetActualDepartureTime())
		if t := r.GetActualDepartureTime(); t != nil && t.CheckValid() == nil && t.AsTime().After(s.cfg.Now().Add(time.Hour)) {
			v.Add("actual_departure_time", "is in the future: record the departure when the batch has left")
		}
	case *sendingv1.CancelBatchRequest:
		store.CheckRequestID(&v, "request_id", r.GetRequestId())
		if _, reason := parseBatchName(r.GetName()); reason != "" {
			v.Add("name", reason)
		}
	default:
		return apierror.NotValidated(req)
	}
	return v.Err()
}

func checkMode(v *apierror.Violations, field string, m commonv1.TransportMode) {
	if _, ok := commonv1.TransportMode_name[int32(m)]; !ok {
		v.Addf(field, "%d is not a transport mode (TRANSPORT_MODE_BUS, _TRAIN or _FLIGHT)", m)
	}
}

// checkSeats checks an optional seat count: unset is the mode's default, a set value is 1 to
// maxSeats.
func checkSeats(v *apierror.Violations, field string, n *int32) {
	if n != nil && (*n < 1 || *n > maxSeats) {
		v.Addf(field, "must be 1 to %d (or unset for the default of the mode), got %d", maxSeats, *n)
	}
}

// seatsOr is the seat count asked for, or the mode's default when none was.
func (s *Service) seatsOr(n *int32, mode commonv1.TransportMode) int {
	if n == nil {
		return s.cfg.Seats.of(mode)
	}
	return int(*n)
}

func checkTime(v *apierror.Violations, field string, t *timestamppb.Timestamp) {
	if t == nil {
		return
	}
	if err := t.CheckValid(); err != nil {
		v.Add(field, err.Error())
	}
}

func checkEscort(v *apierror.Violations, prefix, name, contact string) {
	if name != "" {
		if _, reason := personname.Check(name); reason != "" {
			v.Add(prefix+"escort_name", reason)
		} else if utf8.RuneCountInString(name) > maxEscortName {
			v.Addf(prefix+"escort_name", "is longer than %d characters", maxEscortName)
		}
	}
	if utf8.RuneCountInString(contact) > maxEscortContact || !utf8.ValidString(contact) {
		v.Addf(prefix+"escort_contact", "must be text of at most %d characters", maxEscortContact)
	}
}

func checkWorkerIDField(v *apierror.Violations, field, id string, seen map[string]bool) {
	switch {
	case !roster.ValidWorkerID(id):
		v.Add(field, "must be a worker id such as 520000-K3Q7ZC2M4XJ5R6TA")
	case seen[id]:
		v.Add(field, "is listed twice")
	}
	seen[id] = true
}

// acceptedWorker is an ACCEPTED worker with the proposal that was accepted and where it goes.
type acceptedWorker struct {
	worker   *sendingv1.Worker
	proposal *sendingv1.Proposal
	region   string
	county   string
	start    *commonv1.Date
}

// destination is the planning group of an accepted worker.
func (a *acceptedWorker) destination() string {
	return a.region + "/" + a.county + "/" + civil.Format(a.start)
}

// acceptedWorkers returns the ACCEPTED workers (only those in only, when not nil) whose
// accepted proposal and its vacancy are known, by worker id. A worker with more than one
// ACCEPTED proposal (given back to the pool and placed again) goes with the newest.
func (s *Service) acceptedWorkers(tx *bbolt.Tx, only map[string]bool) (map[string]*acceptedWorker, error) {
	props := map[string]*sendingv1.Proposal{}
	workers := map[string]*sendingv1.Worker{}
	err := matching.ForEachProposal(tx, func(p *sendingv1.Proposal) error {
		id := p.GetWorkerId()
		if p.GetState() != sendingv1.ProposalState_PROPOSAL_STATE_ACCEPTED || (only != nil && !only[id]) {
			return nil
		}
		w, seen := workers[id]
		if !seen {
			var err error
			w, err = roster.Read(tx, id)
			if errors.Is(err, apierror.ErrNotFound) {
				w, err = nil, nil
			}
			if err != nil {
				return err
			}
			workers[id] = w
		}
		if w.GetStatus() != sendingv1.WorkerStatus_WORKER_STATUS_ACCEPTED {
			return nil
		}
		if old := props[id]; old == nil || p.GetCreateTime().AsTime().After(old.GetCreateTime().AsTime()) {
			props[id] = p
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := map[string]*acceptedWorker{}
	for id, p := range props {
		dv, _, err := demand.Vacancy(tx, p.GetReceivingRegion(), matching.VacancyIDOf(p.GetVacancy()))
		if err != nil {
			return nil, err
		}
		vac := dv.GetVacancy()
		if vac == nil || vac.GetWorkCounty() == "" || vac.GetStartDate() == nil {
			continue
		}
		out[id] = &acceptedWorker{worker: workers[id], proposal: p, region: p.GetReceivingRegion(), county: vac.GetWorkCounty(), start: vac.GetStartDate()}
	}
	return out, nil
}

func cloneDate(d *commonv1.Date) *commonv1.Date {
	if d == nil {
		return nil
	}
	return &commonv1.Date{Year: d.Year, Month: d.Month, Day: d.Day}
}

// DefaultDeparture is 08:00 (China) two days before the start date.
func DefaultDeparture(start *commonv1.Date) *timestamppb.Timestamp {
	return timestamppb.New(time.Date(int(start.GetYear()), time.Month(start.GetMonth()), int(start.GetDay())-2, 8, 0, 0, 0, civil.Zone))
}

// batchSpec is what a new batch is made of.
type batchSpec struct {
	mode          commonv1.TransportMode
	seats         int
	origin        string
	departure     *timestamppb.Timestamp
	escortName    string
	escortContact string
	workers       []*acceptedWorker // all to one destination
}

// createBatch stores a new PLANNED batch, moves its workers ACCEPTED -> SCHEDULED and puts its
// announcement in the outbox, in tx. It returns the batch and the outbox destination.
func (s *Service) createBatch(ctx context.Context, tx *bbolt.Tx, spec batchSpec) (*sendingv1.Batch, string, error) {
	seq, err := batches.NextSeq(tx)
	if err != nil {
		return nil, "", err
	}
	id := fmt.Sprintf("%s-B%08d", s.cfg.Region, seq)
	first := spec.workers[0]
	ws := slices.Clone(spec.workers)
	slices.SortFunc(ws, func(a, b *acceptedWorker) int {
		if c := strings.Compare(a.worker.GetHomeCounty(), b.worker.GetHomeCounty()); c != 0 {
			return c
		}
		return strings.Compare(a.worker.GetWorkerId(), b.worker.GetWorkerId())
	})
	origin := spec.origin
	if origin == "" {
		origin = ws[0].worker.GetHomeCounty()
		for _, w := range ws {
			if w.worker.GetHomeCounty() != origin {
				origin = s.cfg.Region
				break
			}
		}
	}
	mode := spec.mode
	if mode == commonv1.TransportMode_TRANSPORT_MODE_UNSPECIFIED {
		mode = commonv1.TransportMode_TRANSPORT_MODE_BUS
	}
	departure := spec.departure
	if departure == nil {
		departure = DefaultDeparture(first.start)
	}
	b := &sendingv1.Batch{
		Name:                 batchName(id),
		BatchId:              id,
		Mode:                 mode,
		Seats:                new(int32(spec.seats)),
		Origin:               origin,
		ReceivingRegion:      first.region,
		DestinationCounty:    first.county,
		StartDate:            cloneDate(first.start),
		PlannedDepartureTime: departure,
		EscortName:           spec.escortName,
		EscortContact:        spec.escortContact,
		State:                batchPlanned,
		CreateTime:           timestamppb.New(s.cfg.Now()),
	}
	intake := &receivingv1.IntakeBatch{
		BatchId:             id,
		SendingRegion:       s.cfg.Region,
		Mode:                mode,
		Origin:              origin,
		DestinationCounty:   first.county,
		DepartureTime:       departure,
		ExpectedArrivalTime: timestamppb.New(departure.AsTime().Add(travelTime[mode])),
		EscortName:          spec.escortName,
		EscortContact:       spec.escortContact,
	}
	for _, a := range ws {
		w := a.worker
		b.Manifest = append(b.Manifest, &sendingv1.ManifestEntry{
			WorkerId: w.GetWorkerId(), HomeCounty: w.GetHomeCounty(), Vacancy: a.proposal.GetVacancy(), RegisteredPoor: w.GetRegisteredPoor(),
		})
		intake.Entries = append(intake.Entries, &receivingv1.IntakeEntry{
			WorkerId: w.GetWorkerId(), Vacancy: a.proposal.GetVacancy(), RegisteredPoor: w.GetRegisteredPoor(),
		})
		if _, err := s.roster.ChangeStatus(tx, w.GetWorkerId(), sendingv1.WorkerStatus_WORKER_STATUS_SCHEDULED, "on the manifest of "+b.GetName()); err != nil {
			return nil, "", err
		}
	}
	if err := PutBatch(tx, b); err != nil {
		return nil, "", err
	}
	dest := matching.ReceivingDestination(first.region)
	if _, err := outbox.Put(ctx, tx, s.cfg.Now(), dest, BatchKey(id), &receivingv1.AnnounceBatchRequest{Batch: intake}); err != nil {
		return nil, "", err
	}
	return b, dest, nil
}

// --- RPCs ---

// PlanBatches plans batches for the accepted workers not yet on one (see the file comment).
func (x *transportServer) PlanBatches(ctx context.Context, req *sendingv1.PlanBatchesRequest) (*sendingv1.PlanBatchesResponse, error) {
	s := x.s
	method := sendingv1.TransportService_PlanBatches_FullMethodName
	seats := s.seatsOr(req.Seats, req.GetMode())
	resp := &sendingv1.PlanBatchesResponse{}
	var dests []string
	err := s.db.UpdateOnce(s.cfg.Now(), method, req, resp, func(tx *bbolt.Tx) error {
		acc, err := s.acceptedWorkers(tx, nil)
		if err != nil {
			return err
		}
		groups := map[string]*batchplan.Group{}
		for _, a := range acc {
			if (req.GetReceivingRegion() != "" && a.region != req.GetReceivingRegion()) ||
				(req.GetStartDate() != nil && civil.Format(req.GetStartDate()) != civil.Format(a.start)) {
				continue
			}
			g := groups[a.destination()]
			if g == nil {
				g = &batchplan.Group{Province: a.region, County: a.county, StartDate: civil.Format(a.start)}
				groups[a.destination()] = g
			}
			g.Workers = append(g.Workers, batchplan.Worker{ID: a.worker.GetWorkerId(), HomeCounty: a.worker.GetHomeCounty()})
		}
		var list []batchplan.Group
		for _, g := range groups {
			list = append(list, *g)
		}
		vehicles, err := batchplan.Plan(list, seats)
		if err != nil {
			return err
		}
		for _, v := range vehicles {
			spec := batchSpec{
				mode: req.GetMode(), seats: seats, departure: req.GetPlannedDepartureTime(),
				escortName: req.GetEscortName(), escortContact: req.GetEscortContact(),
			}
			for _, w := range v.Workers {
				spec.workers = append(spec.workers, acc[w.ID])
			}
			b, dest, err := s.createBatch(ctx, tx, spec)
			if err != nil {
				return err
			}
			resp.Batches = append(resp.Batches, b)
			if !slices.Contains(dests, dest) {
				dests = append(dests, dest)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.relays.Notify(dests...)
	return resp, nil
}

// CreateBatch creates one batch by hand from accepted workers going to one destination on one
// start date.
func (x *transportServer) CreateBatch(ctx context.Context, req *sendingv1.CreateBatchRequest) (*sendingv1.CreateBatchResponse, error) {
	s := x.s
	method := sendingv1.TransportService_CreateBatch_FullMethodName
	in := req.GetBatch()
	seats := s.seatsOr(in.Seats, in.GetMode())
	resp := &sendingv1.CreateBatchResponse{}
	var dest string
	err := s.db.UpdateOnce(s.cfg.Now(), method, req, resp, func(tx *bbolt.Tx) error {
		if len(in.GetManifest()) > seats {
			var v apierror.Violations
			v.Addf("batch.manifest", "lists %d workers for %d seats", len(in.GetManifest()), seats)
			return v.Err()
		}
		only := map[string]bool{}
		for _, e := range in.GetManifest() {
			only[e.GetWorkerId()] = true
		}
		acc, err := s.acceptedWorkers(tx, only)
		if err != nil {
			return err
		}
		spec := batchSpec{
			mode: in.GetMode(), seats: seats, origin: in.GetOrigin(), departure: in.GetPlannedDepartureTime(),
			escortName: in.GetEscortName(), escortContact: in.GetEscortContact(),
		}
		for i, e := range in.GetManifest() {
			a := acc[e.GetWorkerId()]
			if a == nil {
				return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_WORKER_NOT_ACCEPTED,
					"batch.manifest[%d]: worker %s is not an accepted worker waiting for a batch (status ACCEPTED with an accepted proposal)",
					i, e.GetWorkerId())
			}
			if len(spec.workers) > 0 && a.destination() != spec.workers[0].destination() {
				return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_MIXED_DESTINATIONS,
					"batch.manifest[%d]: worker %s goes to %s, not %s like the first worker: one batch carries workers to one work county and start date",
					i, e.GetWorkerId(), a.destination(), spec.workers[0].destination())
			}
			spec.workers = append(spec.workers, a)
		}
		b, d, err := s.createBatch(ctx, tx, spec)
		if err != nil {
			return err
		}
		dest = d
		resp.Batch = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.relays.Notify(dest)
	return resp, nil
}

// GetBatch reads a batch.
func (x *transportServer) GetBatch(_ context.Context, req *sendingv1.GetBatchRequest) (*sendingv1.GetBatchResponse, error) {
	id, reason := parseBatchName(req.GetName())
	if reason != "" {
		return nil, apierror.InvalidArgument("name %s", reason)
	}
	var b *sendingv1.Batch
	err := x.s.db.View(func(tx *bbolt.Tx) error {
		var err error
		b, err = GetBatch(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &sendingv1.GetBatchResponse{Batch: b}, nil
}

// GetBatchManifest reads a batch with one printable row per manifest entry: the worker's name
// and masked phone from the roster (roster.Masked: a phone never leaves unmasked), the employer
// and work county of the vacancy from the replica of demand, in one read transaction.
func (x *transportServer) GetBatchManifest(_ context.Context, req *sendingv1.GetBatchManifestRequest) (*sendingv1.GetBatchManifestResponse, error) {
	id, reason := parseBatchName(req.GetName())
	if reason != "" {
		return nil, apierror.InvalidArgument("name %s", reason)
	}
	resp := &sendingv1.GetBatchManifestResponse{}
	err := x.s.db.View(func(tx *bbolt.Tx) error {
		b, err := GetBatch(tx, id)
		if err != nil {
			return err
		}
		resp.Batch, resp.Rows = b, nil
		boarded := map[string]bool{}
		for _, w := range b.GetBoardedWorkerIds() {
			boarded[w] = true
		}
		for i, e := range b.GetManifest() {
			row := &sendingv1.ManifestRow{
				Seat: int32(i + 1), WorkerId: e.GetWorkerId(), HomeCounty: e.GetHomeCounty(), Vacancy: e.GetVacancy(),
				RegisteredPoor: e.GetRegisteredPoor(), Boarded: boarded[e.GetWorkerId()],
			}
			w, err := roster.Read(tx, e.GetWorkerId())
			switch {
			case errors.Is(err, apierror.ErrNotFound):
			case err != nil:
				return err
			default:
				m := roster.Masked(w, sendingv1.WorkerView_WORKER_VIEW_BASIC)
				row.FullName, row.MaskedPhone = m.GetFullName(), m.GetPhone()
			}
			dv, ok, err := demand.Vacancy(tx, b.GetReceivingRegion(), matching.VacancyIDOf(e.GetVacancy()))
			if err != nil {
				return err
			}
			if ok {
				row.EmployerName, row.WorkCounty = dv.GetVacancy().GetEmployerName(), dv.GetVacancy().GetWorkCounty()
			}
			resp.Rows = append(resp.Rows, row)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// ListBatches lists batches in batch-id order.
func (x *transportServer) ListBatches(_ context.Context, req *sendingv1.ListBatchesRequest) (*sendingv1.ListBatchesResponse, error) {
	listing := batchesListing(req)
	after, err := listing.Decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	size := batchesSize.Of(req.GetPageSize())
	var page store.Page[*sendingv1.Batch]
	err = x.s.db.View(func(tx *bbolt.Tx) error {
		var err error
		page, err = batches.Page(tx, store.Range{After: after}, size, func(_ []byte, b *sendingv1.Batch) bool {
			return (req.GetState() == 0 || b.GetState() == req.GetState()) &&
				(req.GetReceivingRegion() == "" || b.GetReceivingRegion() == req.GetReceivingRegion())
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	resp := &sendingv1.ListBatchesResponse{Batches: page.Items}
	if page.Last != nil {
		resp.NextPageToken = listing.Token(page.Last)
	}
	return resp, nil
}

// entryTrip is the trip of manifest entry e of batch b that departed at departed: batch,
// receiving region, vacancy, departure time, and the occupation of the replicated vacancy (for
// employment dynamics by occupation) when the replica has it.
func entryTrip(tx *bbolt.Tx, b *sendingv1.Batch, e *sendingv1.ManifestEntry, departed *timestamppb.Timestamp) (*sendingv1.Trip, error) {
	trip := &sendingv1.Trip{BatchId: b.GetBatchId(), ReceivingRegion: b.GetReceivingRegion(), Vacancy: e.GetVacancy(), DepartureTime: departed}
	dv, ok, err := demand.Vacancy(tx, b.GetReceivingRegion(), matching.VacancyIDOf(e.GetVacancy()))
	if err != nil {
		return nil, err
	}
	if ok {
		trip.Occupation = dv.GetVacancy().GetOccupation()
	}
	return trip, nil
}

// departureInWindow refuses a departure dated before the start window of a boarded worker's
// vacancy opens (ledgerclient.StartWindowProblem, the rule the receiving service applies to the
// arrival): INVALID_ARGUMENT on actual_departure_time. A vacancy no longer in the replica (closed
// and compacted away) is not checked here; the receiving service still checks the arrival.
func departureInWindow(tx *bbolt.Tx, b *sendingv1.Batch, boarded map[string]bool, departed *timestamppb.Timestamp) error {
	day := civil.Today(departed.AsTime())
	seen := map[string]bool{}
	for _, e := range b.GetManifest() {
		if !boarded[e.GetWorkerId()] || seen[e.GetVacancy()] {
			continue
		}
		seen[e.GetVacancy()] = true
		dv, ok, err := demand.Vacancy(tx, b.GetReceivingRegion(), matching.VacancyIDOf(e.GetVacancy()))
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if why := ledgerclient.StartWindowProblem("departure", day, e.GetVacancy(), dv.GetVacancy().GetStartDate()); why != "" {
			var v apierror.Violations
			v.Add("actual_departure_time", why)
			return v.Err()
		}
	}
	return nil
}

// RecordDeparture records who boarded a planned batch (see the file comment).
func (x *transportServer) RecordDeparture(ctx context.Context, req *sendingv1.RecordDepartureRequest) (*sendingv1.RecordDepartureResponse, error) {
	s := x.s
	id, reason := parseBatchName(req.GetName())
	if reason != "" {
		return nil, apierror.InvalidArgument("name %s", reason)
	}
	method := sendingv1.TransportService_RecordDeparture_FullMethodName
	resp := &sendingv1.RecordDepartureResponse{}
	var dests []string
	err := s.db.UpdateOnce(s.cfg.Now(), method, req, resp, func(tx *bbolt.Tx) error {
		b, err := GetBatch(tx, id)
		if err != nil {
			return err
		}
		if b.GetState() != batchPlanned {
			return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_BATCH_NOT_PLANNED, "batch %s is %s: only a planned batch can depart",
				b.GetName(), strings.TrimPrefix(b.GetState().String(), "BATCH_STATE_"))
		}
		onManifest := map[string]*sendingv1.ManifestEntry{}
		for _, e := range b.GetManifest() {
			onManifest[e.GetWorkerId()] = e
		}
		boarded := map[string]bool{}
		var v apierror.Violations
		for i, w := range req.GetBoardedWorkerIds() {
			if onManifest[w] == nil {
				v.Addf(fmt.Sprintf("boarded_worker_ids[%d]", i), "worker %s is not on the manifest of %s", w, b.GetName())
			}
			boarded[w] = true
		}
		if err := v.Err(); err != nil {
			return err
		}
		now := s.cfg.Now()
		departed := req.GetActualDepartureTime()
		if departed == nil {
			departed = timestamppb.New(now)
		}
		if err := departureInWindow(tx, b, boarded, departed); err != nil {
			return err
		}
		for _, e := range b.GetManifest() {
			if !boarded[e.GetWorkerId()] {
				continue
			}
			trip, err := entryTrip(tx, b, e, departed)
			if err != nil {
				return err
			}
			if _, err := s.roster.Depart(tx, e.GetWorkerId(), trip, "boarded "+b.GetName()); err != nil {
				return err
			}
			b.BoardedWorkerIds = append(b.BoardedWorkerIds, e.GetWorkerId())
			if _, err := outbox.Put(ctx, tx, s.cfg.Now(), ledgerclient.Destination, "", &coordinationv1.LedgerEvent{
				EventId:         s.cfg.Region + ":departed:" + b.GetBatchId() + ":" + e.GetWorkerId(),
				Kind:            coordinationv1.EventKind_EVENT_KIND_DEPARTED,
				ReporterRegion:  s.cfg.Region,
				SendingRegion:   s.cfg.Region,
				ReceivingRegion: b.GetReceivingRegion(),
				WorkerId:        e.GetWorkerId(),
				BatchId:         b.GetBatchId(),
				Vacancy:         e.GetVacancy(),
				OccurTime:       departed,
				RegisteredPoor:  e.GetRegisteredPoor(),
				Details: &coordinationv1.LedgerEvent_Departed{Departed: &coordinationv1.DepartedDetails{
					HomeCounty: e.GetHomeCounty(), Occupation: trip.GetOccupation(),
				}},
			}); err != nil {
				return err
			}
		}
		dest := matching.ReceivingDestination(b.GetReceivingRegion())
		if _, err := outbox.Put(ctx, tx, s.cfg.Now(), dest, BatchKey(b.GetBatchId()), &receivingv1.ReportBatchDepartureRequest{
			BatchId: b.GetBatchId(), SendingRegion: s.cfg.Region, BoardedWorkerIds: b.GetBoardedWorkerIds(), DepartureTime: departed,
		}); err != nil {
			return err
		}
		giveUp := req.GetNoShowDisposition() == sendingv1.NoShowDisposition_NO_SHOW_DISPOSITION_RETURN_TO_AVAILABLE
		for _, e := range b.GetManifest() {
			if boarded[e.GetWorkerId()] {
				continue
			}
			why := "did not board " + b.GetName()
			if !giveUp {
				if err := s.matching.MoveIfIn(tx, e.GetWorkerId(), sendingv1.WorkerStatus_WORKER_STATUS_SCHEDULED, sendingv1.WorkerStatus_WORKER_STATUS_ACCEPTED, why+": keeps the place"); err != nil {
					return err
				}
				continue
			}
			if err := s.matching.MoveIfIn(tx, e.GetWorkerId(), sendingv1.WorkerStatus_WORKER_STATUS_SCHEDULED, sendingv1.WorkerStatus_WORKER_STATUS_AVAILABLE, why+": back to the pool"); err != nil {
				return err
			}
			pid := matching.ProposalID(matching.VacancyIDOf(e.GetVacancy()), e.GetWorkerId())
			p, ok, err := matching.GetProposal(tx, pid)
			if err != nil {
				return err
			}
			if !ok || !matching.IsLive(p.GetState()) {
				continue
			}
			p.State, p.Reason, p.UpdateTime = sendingv1.ProposalState_PROPOSAL_STATE_REJECTED, "withdrawn by the sending side: "+why, timestamppb.New(now)
			if err := matching.PutProposal(tx, p); err != nil {
				return err
			}
			name, err := matching.CandidateName(tx, pid)
			if err != nil {
				return err
			}
			if name == "" {
				continue // never delivered as a candidate: nothing to withdraw
			}
			if _, err := outbox.Put(ctx, tx, s.cfg.Now(), dest, matching.CandidatesKey, &receivingv1.WithdrawCandidateRequest{
				Name: name, SendingRegion: s.cfg.Region, Reason: "the worker " + why,
			}); err != nil {
				return err
			}
		}
		b.State = batchDeparted
		b.ActualDepartureTime = departed
		if err := PutBatch(tx, b); err != nil {
			return err
		}
		dests = []string{dest, ledgerclient.Destination}
		resp.Batch = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.relays.Notify(dests...)
	return resp, nil
}

// CancelBatch cancels a planned batch; its workers go back to ACCEPTED and the receiving
// service is told (through the outbox). Cancelling a cancelled batch returns it unchanged.
func (x *transportServer) CancelBatch(ctx context.Context, req *sendingv1.CancelBatchRequest) (*sendingv1.CancelBatchResponse, error) {
	s := x.s
	id, reason := parseBatchName(req.GetName())
	if reason != "" {
		return nil, apierror.InvalidArgument("name %s", reason)
	}
	method := sendingv1.TransportService_CancelBatch_FullMethodName
	resp := &sendingv1.CancelBatchResponse{}
	dest := "" // the receiving destination told of the cancellation, if any
	err := s.db.UpdateOnce(s.cfg.Now(), method, req, resp, func(tx *bbolt.Tx) error {
		b, err := GetBatch(tx, id)
		if err != nil {
			return err
		}
		switch b.GetState() {
		case batchCancelled:
			resp.Batch = b
			return nil
		case batchPlanned:
		default:
			return apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_BATCH_NOT_PLANNED, "batch %s has departed and cannot be cancelled", b.GetName())
		}
		for _, e := range b.GetManifest() {
			if err := s.matching.MoveIfIn(tx, e.GetWorkerId(), sendingv1.WorkerStatus_WORKER_STATUS_SCHEDULED, sendingv1.WorkerStatus_WORKER_STATUS_ACCEPTED, b.GetName()+" cancelled"); err != nil {
				return err
			}
		}
		b.State = batchCancelled
		if err := PutBatch(tx, b); err != nil {
			return err
		}
		dest = matching.ReceivingDestination(b.GetReceivingRegion())
		if _, err := outbox.Put(ctx, tx, s.cfg.Now(), dest, BatchKey(id), &receivingv1.CancelIntakeBatchRequest{
			BatchId:       id,
			SendingRegion: s.cfg.Region,
			Reason:        "cancelled by the sending province before departure",
		}); err != nil {
			return err
		}
		resp.Batch = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	if dest != "" {
		s.relays.Notify(dest)
	}
	return resp, nil
}

// RefuseManifestEntries takes the manifest entries the receiving service refused off the batch
// (kept in the batch's refused_entries), so that the batch goes on with the others. A refused
// worker who is still SCHEDULED becomes WITHDRAWN with the reason: planning must not put them on
// the next bus (the receiving side may have them already); an operator checks with the
// receiving province and makes them AVAILABLE again, or records what happened.
func (s *Service) RefuseManifestEntries(code string, sent *receivingv1.IntakeBatch, refusals []*commonv1.ItemRefusal) error {
	if len(refusals) == 0 {
		return nil
	}
	refused := map[string]*commonv1.ItemRefusal{}
	for _, r := range refusals {
		if i := int(r.GetIndex()); i >= 0 && i < len(sent.GetEntries()) {
			refused[sent.GetEntries()[i].GetWorkerId()] = r
		}
	}
	now := s.cfg.Now()
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b, err := GetBatch(tx, sent.GetBatchId())
		if err != nil {
			return err
		}
		var keep []*sendingv1.ManifestEntry
		for _, e := range b.GetManifest() {
			r, ok := refused[e.GetWorkerId()]
			if !ok {
				keep = append(keep, e)
				continue
			}
			b.RefusedEntries = append(b.RefusedEntries, &sendingv1.RefusedManifestEntry{
				WorkerId: e.GetWorkerId(), Vacancy: e.GetVacancy(), Reason: r.GetReason(), Message: matching.Clip(r.GetMessage(), 500), RefuseTime: timestamppb.New(now),
			})
			why := fmt.Sprintf("taken off %s: receiving province %s refused the worker (%s): %s; check with them, then make the worker AVAILABLE again",
				b.GetName(), code, r.GetReason(), matching.Clip(r.GetMessage(), 200))
			if err := s.matching.MoveIfIn(tx, e.GetWorkerId(), sendingv1.WorkerStatus_WORKER_STATUS_SCHEDULED, sendingv1.WorkerStatus_WORKER_STATUS_WITHDRAWN, why); err != nil {
				return err
			}
		}
		b.Manifest = keep
		return PutBatch(tx, b)
	})
	if err != nil {
		return err
	}
	s.lg.Warn("receiving service refused workers of a batch; taken off its manifest",
		zap.String("receiving_region", code), zap.String("batch", sent.GetBatchId()), zap.Int("refused", len(refused)))
	return nil
}
