package roster

// RosterService: thin handlers over the roster (workers.go), the lifecycle (lifecycle.go) and
// the bulk import (import.go). Requests are checked once, by ValidateRequest, which the
// grpcserver interceptor calls before each handler (and on every message of the import
// stream); handlers then read or change the store in one transaction each.

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/occupation"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/store"
)

const (
	// listScanBudget bounds the records one ListWorkers call reads: a page with filters that
	// match few workers may come back short (even empty) with a next_page_token to go on from.
	listScanBudget = 100_000
)

// updatablePaths are the field mask paths UpdateWorker accepts.
var updatablePaths = []string{
	fieldFullName, fieldPhone, fieldHomeCounty, fieldRegisteredPoor, fieldOccupations, fieldEducation,
	fieldPreferredDestinations, fieldAvailableFrom, fieldHealthCheckPassed, fieldHealthCheckDate,
}

// ValidateRequest checks a request before its handler runs (called by the grpcserver
// interceptor; for the import stream, on every message). It checks what can be checked without
// the store and returns field violations as an apierror.Violations error.
func (x *rosterServer) ValidateRequest(fullMethod string, req any) error {
	var v apierror.Violations
	switch r := req.(type) {
	case *sendingv1.ImportWorkersRequest:
		store.CheckImportID(&v, "import_id", r.GetImportId())
		if n := len(r.GetRows()); n > maxChunkRows {
			v.Addf("rows", "has %d rows; at most %d per message", n, maxChunkRows)
		}
		if reason := totalRowsProblem(r); reason != "" {
			v.Add("total_rows", reason)
		}
	case *sendingv1.GetImportRequest:
		store.CheckImportID(&v, "import_id", r.GetImportId())
	case *sendingv1.ListImportRejectionsRequest:
		store.CheckImportID(&v, "import_id", r.GetImportId())
		rejectionsSize.Check(&v, r.GetPageSize())
		rejectionsListing(r.GetImportId()).Check(&v, r.GetPageToken())
	case *sendingv1.GetWorkerRequest:
		if _, reason := ParseWorkerName(r.GetName()); reason != "" {
			v.Add("name", reason)
		}
		if _, ok := sendingv1.WorkerView_name[int32(r.GetView())]; !ok {
			v.Add("view", "is not a WorkerView")
		}
	case *sendingv1.ListWorkersRequest:
		x.validateList(r, &v)
	case *sendingv1.UpdateWorkerRequest:
		x.validateUpdate(r, &v)
	case *sendingv1.ChangeWorkerStatusRequest:
		if _, reason := ParseWorkerName(r.GetName()); reason != "" {
			v.Add("name", reason)
		}
		switch {
		case !isRealStatus(r.GetStatus()):
			v.Add("status", "is required: the new status, such as WORKER_STATUS_WITHDRAWN")
		case r.GetStatus() == stPlacedLocally:
			v.Add("status", "PLACED_LOCALLY is set by ReturneeService.PlaceWorkerLocally, which names the local employer")
		}
		if len(r.GetReason()) > MaxStatusReasonLen {
			v.Addf("reason", "is longer than %d bytes", MaxStatusReasonLen)
		}
		checkRequestID(r.GetRequestId(), &v)
	case *sendingv1.RecordReturnHomeRequest:
		if _, reason := ParseWorkerName(r.GetName()); reason != "" {
			v.Add("name", reason)
		}
		if t := r.GetReturnTime(); t != nil {
			if err := t.CheckValid(); err != nil {
				v.Add("return_time", "is not a valid timestamp")
			} else if t.AsTime().After(x.s.cfg.Now().Add(clockSkew)) {
				v.Add("return_time", "is in the future: record a return once it happened")
			}
		}
		if len(r.GetNote()) > MaxReturnNoteLen {
			v.Addf("note", "is longer than %d bytes", MaxReturnNoteLen)
		}
		checkRequestID(r.GetRequestId(), &v)
	case *sendingv1.DeleteWorkerRequest:
		if _, reason := ParseWorkerName(r.GetName()); reason != "" {
			v.Add("name", reason)
		}
		checkRequestID(r.GetRequestId(), &v)
	case *sendingv1.LookupWorkerRequest:
		validateLookup(r, &v)
	case *sendingv1.FindWorkersRequest:
		x.validateFind(r, &v)
	case *sendingv1.ListLookupRecordsRequest:
		lookupsSize.Check(&v, r.GetPageSize())
		lookupsListing.Check(&v, r.GetPageToken())
	default:
		return apierror.NotValidated(req)
	}
	return v.Err()
}

func checkRequestID(id string, v *apierror.Violations) {
	store.CheckRequestID(v, "request_id", id)
}

// --- imports ---

// ImportWorkers imports a roster in chunks (see import.go).
func (x *rosterServer) ImportWorkers(stream grpc.ClientStreamingServer[sendingv1.ImportWorkersRequest, sendingv1.ImportWorkersResponse]) error {
	return x.s.importWorkers(stream)
}

// GetImport returns the summary of an import, whether it completed and the last row on disk.
func (x *rosterServer) GetImport(ctx context.Context, req *sendingv1.GetImportRequest) (*sendingv1.GetImportResponse, error) {
	resp := &sendingv1.GetImportResponse{}
	err := x.s.db.View(func(tx *bbolt.Tx) error {
		rec, found, err := getImportRecord(tx, req.GetImportId())
		if err != nil {
			return err
		}
		if !found {
			return apierror.NotFound("import %q not found", req.GetImportId())
		}
		resp.Complete = rec.complete
		resp.LastRowNumber = rec.lastRow
		resp.Summary, err = summaryOf(tx, req.GetImportId(), rec)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// ListImportRejections pages through every rejected row of an import in row order.
func (x *rosterServer) ListImportRejections(ctx context.Context, req *sendingv1.ListImportRejectionsRequest) (*sendingv1.ListImportRejectionsResponse, error) {
	size := rejectionsSize.Of(req.GetPageSize())
	listing := rejectionsListing(req.GetImportId())
	after, err := listing.Decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &sendingv1.ListImportRejectionsResponse{}
	err = x.s.db.View(func(tx *bbolt.Tx) error {
		if _, found, err := getImportRecord(tx, req.GetImportId()); err != nil {
			return err
		} else if !found {
			return apierror.NotFound("import %q not found", req.GetImportId())
		}
		rjs, last, err := readRejections(tx, req.GetImportId(), after, size)
		if err != nil {
			return err
		}
		resp.Rejections = rjs
		if last != nil {
			resp.NextPageToken = listing.Token(last)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// --- workers ---

// GetWorker returns one worker, masked unless the full view is asked for.
func (x *rosterServer) GetWorker(ctx context.Context, req *sendingv1.GetWorkerRequest) (*sendingv1.GetWorkerResponse, error) {
	id, reason := ParseWorkerName(req.GetName())
	if reason != "" {
		return nil, apierror.InvalidArgument("name %s", reason)
	}
	// The stored record, patched on the wire (wire.go): not decoded and encoded again.
	enc := encodedWorkers{field: getWorkerField, view: req.GetView(), hint: 1}
	if err := x.s.db.View(func(tx *bbolt.Tx) error {
		rec, ok, err := workers.GetBytes(tx, []byte(id))
		if err != nil {
			return fmt.Errorf("read worker %s: %w", id, err)
		}
		if !ok {
			return errWorkerNotFound(id)
		}
		return enc.add([]byte(id), rec)
	}); err != nil {
		return nil, err
	}
	resp := &sendingv1.GetWorkerResponse{}
	enc.setIn(resp)
	return resp, nil
}

func (x *rosterServer) validateList(r *sendingv1.ListWorkersRequest, v *apierror.Violations) {
	workersSize.Check(v, r.GetPageSize())
	if st := r.GetStatus(); st != sendingv1.WorkerStatus_WORKER_STATUS_UNSPECIFIED && !isRealStatus(st) {
		v.Add("status", "is not a WorkerStatus")
	}
	if c := r.GetHomeCounty(); c != "" {
		if _, reason := x.s.checker().homeCounty(c); reason != "" {
			v.Add("home_county", reason)
		}
	}
	if o := r.GetOccupation(); o != "" && (!occupation.Known(o) || o == occupation.General) {
		v.Addf("occupation", "%q is not an ISCO-08 unit group code (4 digits, such as 8212)", o)
	}
	if p := r.GetDestinationProvince(); p != "" {
		switch {
		case !x.s.cfg.Regions.IsProvince(p):
			v.Addf("destination_province", "%q is not a province code (6 digits ending in 0000, such as 440000)", p)
		case p == x.s.cfg.Region:
			v.Add("destination_province", p+" is this sending province, not a destination")
		}
	}
	if d := r.GetAvailableBy(); d != nil {
		if reason := CheckDate(d); reason != "" {
			v.Add("available_by", reason)
		}
	}
	if t := r.GetUpdatedAfter(); t != nil {
		if err := t.CheckValid(); err != nil {
			v.Add("updated_after", "is not a valid time: "+err.Error())
		}
	}
	workersListing(r).Check(v, r.GetPageToken())
}

// ListWorkers lists workers (not erased ones) in worker-id order, masked. The page token holds
// the last worker id read, so each page continues after it: a worker that exists for the whole
// listing is returned exactly once, whatever imports add meanwhile (new workers whose id sorts
// before the position are not seen, the ones after it are).
func (x *rosterServer) ListWorkers(ctx context.Context, req *sendingv1.ListWorkersRequest) (*sendingv1.ListWorkersResponse, error) {
	size := workersSize.Of(req.GetPageSize())
	afterKey, err := workersListing(req).Decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &sendingv1.ListWorkersResponse{}
	// The stored records of the page, patched on the wire (wire.go); a record is decoded only
	// when a filter needs more of it than its status.
	var enc encodedWorkers
	keep := listFilter(req)
	if req.GetHomeCounty() != "" && req.GetUpdatedAfter() == nil {
		// A county's live workers are in the county index, in the same order; erased ones
		// (listed only with updated_after) are not, so that listing still walks the roster.
		err = x.s.db.View(func(tx *bbolt.Tx) error {
			resp.NextPageToken = ""
			enc = encodedWorkers{field: listWorkersField, view: sendingv1.WorkerView_WORKER_VIEW_BASIC, hint: size}
			return listCounty(tx, req, afterKey, size, keep, &enc, resp)
		})
		if err != nil {
			return nil, err
		}
		enc.setIn(resp)
		return resp, nil
	}
	err = x.s.db.View(func(tx *bbolt.Tx) error {
		resp.NextPageToken = ""
		enc = encodedWorkers{field: listWorkersField, view: sendingv1.WorkerView_WORKER_VIEW_BASIC, hint: size}
		scanned := 0
		var lastRead []byte
		return workers.ScanBytes(tx, store.Range{After: afterKey}, func(k, rec []byte) (bool, error) {
			if enc.len() == size || scanned == listScanBudget {
				// More records follow: the next page continues after the last one read.
				resp.NextPageToken = workersListing(req).Token(lastRead)
				return false, nil
			}
			scanned++
			lastRead = append(lastRead[:0], k...)
			ok, err := keep(k, rec)
			if err != nil || !ok {
				return err == nil, err
			}
			return true, enc.add(k, rec)
		})
	})
	if err != nil {
		return nil, err
	}
	enc.setIn(resp)
	return resp, nil
}

// listFilter returns the test of ListWorkers for r on a stored record (key id, bytes rec): a
// request without data filters (page size, token and status alone) needs only the record's
// status and tombstone flag, read on the wire; any other field set in r decodes the record and
// asks listed.
func listFilter(r *sendingv1.ListWorkersRequest) func(id, rec []byte) (bool, error) {
	statusOnly := true
	r.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		switch fd.Name() {
		case "page_size", "page_token", "status":
			return true
		}
		statusOnly = false
		return false
	})
	if statusOnly {
		return func(id, rec []byte) (bool, error) {
			status, erased, err := workerState(id, rec)
			if err != nil || erased {
				return false, err // tombstones are listed only with updated_after
			}
			return r.GetStatus() == sendingv1.WorkerStatus_WORKER_STATUS_UNSPECIFIED || status == r.GetStatus(), nil
		}
	}
	w := &sendingv1.Worker{}
	return func(id, rec []byte) (bool, error) {
		proto.Reset(w)
		if err := proto.Unmarshal(rec, w); err != nil {
			return false, errBadRecord(id, err)
		}
		return listed(w, r), nil
	}
}

// listCounty is ListWorkers with a home_county filter and no updated_after: it walks the county
// index (BucketWorkersByCounty) from after the worker id afterKey, reading only that county's
// workers, with the scan budget of the roster walk.
func listCounty(tx *bbolt.Tx, req *sendingv1.ListWorkersRequest, afterKey []byte, size int, keep func(id, rec []byte) (bool, error), enc *encodedWorkers, resp *sendingv1.ListWorkersResponse) error {
	b := tx.Bucket(BucketWorkersByCounty)
	if b == nil {
		return fmt.Errorf("bucket %s does not exist", BucketWorkersByCounty)
	}
	prefix := []byte(req.GetHomeCounty())
	c := b.Cursor()
	k, _ := c.Seek(append(bytes.Clone(prefix), afterKey...))
	if afterKey != nil && k != nil && bytes.Equal(k[len(prefix):], afterKey) {
		k, _ = c.Next()
	}
	scanned := 0
	var lastRead []byte
	for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if enc.len() == size || scanned == listScanBudget {
			resp.NextPageToken = workersListing(req).Token(lastRead)
			return nil
		}
		scanned++
		id := k[len(prefix):]
		lastRead = append(lastRead[:0], id...)
		rec, ok, err := workers.GetBytes(tx, id)
		if err != nil {
			return fmt.Errorf("county index: read worker %s: %w", id, err)
		}
		if !ok {
			return fmt.Errorf("county index: %w", errWorkerNotFound(string(id)))
		}
		if ok, err := keep(id, rec); err != nil {
			return fmt.Errorf("county index: %w", err)
		} else if ok {
			if err := enc.add(id, rec); err != nil {
				return err
			}
		}
	}
	return nil
}

// listed reports whether ListWorkers returns w for r: changed after r's updated_after (when r
// has one); not erased, with the status (when r has one) and the other filters of r, or, when
// r has updated_after, erased (a tombstone) whatever the other filters.
func listed(w *sendingv1.Worker, r *sendingv1.ListWorkersRequest) bool {
	if after := r.GetUpdatedAfter(); after != nil && !w.GetUpdateTime().AsTime().After(after.AsTime()) {
		return false
	}
	if w.GetErased() {
		return r.GetUpdatedAfter() != nil
	}
	if r.GetStatus() != sendingv1.WorkerStatus_WORKER_STATUS_UNSPECIFIED && w.GetStatus() != r.GetStatus() {
		return false
	}
	return matchesList(w, r)
}

// matchesList reports whether w has the filters of r on its data (home county, occupation,
// registered-poor, destination, health check, availability).
func matchesList(w *sendingv1.Worker, r *sendingv1.ListWorkersRequest) bool {
	if p := r.GetDestinationProvince(); p != "" && len(w.GetPreferredDestinations()) > 0 && !slices.Contains(w.GetPreferredDestinations(), p) {
		return false
	}
	if r.HealthCheckPassed != nil && w.GetHealthCheckPassed() != r.GetHealthCheckPassed() {
		return false
	}
	if by := r.GetAvailableBy(); by != nil {
		if af := w.GetAvailableFrom(); af != nil && civil.Format(af) > civil.Format(by) {
			return false
		}
	}
	if c := r.GetHomeCounty(); c != "" && w.GetHomeCounty() != c {
		return false
	}
	if o := r.GetOccupation(); o != "" && !slices.Contains(w.GetOccupations(), o) {
		return false
	}
	if r.RegisteredPoor != nil && w.GetRegisteredPoor() != r.GetRegisteredPoor() {
		return false
	}
	return true
}

// --- UpdateWorker ---

// applyMask sets the fields named by paths from src on dst, each checked and normalised, and
// records a violation (field "worker.<path>") for each bad one. Unknown and immutable paths are
// violations of "update_mask".
func (c checker) applyMask(dst, src *sendingv1.Worker, paths []string, v *apierror.Violations) {
	seen := map[string]bool{}
	for _, p := range paths {
		field := "worker." + p
		if seen[p] {
			v.Addf("update_mask", "names %s twice", p)
			continue
		}
		seen[p] = true
		var reason string
		switch p {
		case fieldFullName:
			dst.FullName, reason = checkFullName(src.GetFullName())
		case fieldPhone:
			dst.Phone, reason = checkPhone(src.GetPhone())
		case fieldHomeCounty:
			dst.HomeCounty, reason = c.homeCounty(src.GetHomeCounty())
		case fieldRegisteredPoor:
			dst.RegisteredPoor = src.GetRegisteredPoor()
		case fieldOccupations:
			dst.Occupations, reason = checkOccupations(src.GetOccupations())
		case fieldEducation:
			if _, ok := sendingv1.Education_name[int32(src.GetEducation())]; !ok {
				reason = "is not an Education value"
			}
			dst.Education = src.GetEducation()
		case fieldPreferredDestinations:
			dst.PreferredDestinations, reason = c.destinations(src.GetPreferredDestinations())
		case fieldAvailableFrom:
			dst.AvailableFrom, reason = cloneDate(src.GetAvailableFrom()), CheckDate(src.GetAvailableFrom())
		case fieldHealthCheckPassed:
			dst.HealthCheckPassed = src.GetHealthCheckPassed()
		case fieldHealthCheckDate:
			dst.HealthCheckDate, reason = cloneDate(src.GetHealthCheckDate()), CheckDate(src.GetHealthCheckDate())
		case "id_number":
			v.Add("update_mask", "id_number cannot be changed: delete the worker and import the row again")
			continue
		case "status":
			v.Add("update_mask", "status is changed with ChangeWorkerStatus")
			continue
		default:
			v.Addf("update_mask", "%q cannot be updated; updatable fields: %s", p, strings.Join(updatablePaths, ", "))
			continue
		}
		if reason != "" {
			v.Add(field, reason)
		}
	}
}

func (x *rosterServer) validateUpdate(r *sendingv1.UpdateWorkerRequest, v *apierror.Violations) {
	if r.GetWorker() == nil {
		v.Add("worker", "is required: the worker with name and the new values")
		return
	}
	if _, reason := ParseWorkerName(r.GetWorker().GetName()); reason != "" {
		v.Add("worker.name", reason)
	}
	if len(r.GetUpdateMask().GetPaths()) == 0 {
		v.Add("update_mask", "is required: the fields to change, such as phone,home_county")
	}
	x.s.checker().applyMask(&sendingv1.Worker{}, r.GetWorker(), r.GetUpdateMask().GetPaths(), v)
	checkRequestID(r.GetRequestId(), v)
}

// UpdateWorker changes the fields in the update mask. Erased workers cannot be updated.
func (x *rosterServer) UpdateWorker(ctx context.Context, req *sendingv1.UpdateWorkerRequest) (*sendingv1.UpdateWorkerResponse, error) {
	id, reason := ParseWorkerName(req.GetWorker().GetName())
	if reason != "" {
		return nil, apierror.InvalidArgument("worker.name %s", reason)
	}
	now := x.s.cfg.Now()
	resp := &sendingv1.UpdateWorkerResponse{}
	err := x.s.db.UpdateOnce(now, sendingv1.RosterService_UpdateWorker_FullMethodName, req, resp, func(tx *bbolt.Tx) error {
		w, err := Read(tx, id)
		if err != nil {
			return err
		}
		if err := checkEtag(w, req.GetWorker().GetEtag()); err != nil {
			return err
		}
		changed, err := x.s.checker().update(w, req.GetWorker(), req.GetUpdateMask().GetPaths(), now)
		if err != nil {
			return err
		}
		if changed {
			if err := putWorker(tx, w); err != nil {
				return err
			}
		}
		resp.Worker = Masked(w, sendingv1.WorkerView_WORKER_VIEW_BASIC)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// update is the rule of UpdateWorker: it sets the fields of paths in w from src, checked as an
// import row's are, and reports whether any changed (then with a new update time, at now). An
// erased worker is refused (WORKER_ERASED), and so is a health check date that the change
// leaves without a passed check or in the future.
func (c checker) update(w, src *sendingv1.Worker, paths []string, now time.Time) (bool, error) {
	if w.GetErased() {
		return false, apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_WORKER_ERASED, "worker %s was erased and cannot be updated", w.GetName())
	}
	before := importedFields(w)
	var v apierror.Violations
	c.applyMask(w, src, paths, &v)
	if err := v.Err(); err != nil {
		return false, err
	}
	if reason := checkHealth(w.GetHealthCheckPassed(), w.GetHealthCheckDate(), civil.Today(now)); reason != "" {
		v.Add("worker.health_check_date", reason)
		return false, v.Err()
	}
	if proto.Equal(before, importedFields(w)) {
		return false, nil
	}
	w.UpdateTime = timestamppb.New(now)
	return true, nil
}

// ChangeWorkerStatus moves a worker along the lifecycle (lifecycle.go).
func (x *rosterServer) ChangeWorkerStatus(ctx context.Context, req *sendingv1.ChangeWorkerStatusRequest) (*sendingv1.ChangeWorkerStatusResponse, error) {
	id, reason := ParseWorkerName(req.GetName())
	if reason != "" {
		return nil, apierror.InvalidArgument("name %s", reason)
	}
	resp := &sendingv1.ChangeWorkerStatusResponse{}
	err := x.s.db.UpdateOnce(x.s.cfg.Now(), sendingv1.RosterService_ChangeWorkerStatus_FullMethodName, req, resp, func(tx *bbolt.Tx) error {
		if etag := req.GetEtag(); etag != "" {
			w, err := Read(tx, id)
			if err != nil {
				return err
			}
			if err := checkEtag(w, etag); err != nil {
				return err
			}
		}
		w, err := x.s.ChangeStatus(tx, id, req.GetStatus(), req.GetReason())
		if err != nil {
			return err
		}
		resp.Worker = Masked(w, sendingv1.WorkerView_WORKER_VIEW_BASIC)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if req.GetStatus() == stReturnedHome {
		x.s.cfg.Relays.Notify(ledgerclient.Destination)
	}
	return resp, nil
}

// RecordReturnHome ends the worker's current trip and reports the return to the ledger
// (journey.go).
func (x *rosterServer) RecordReturnHome(ctx context.Context, req *sendingv1.RecordReturnHomeRequest) (*sendingv1.RecordReturnHomeResponse, error) {
	id, reason := ParseWorkerName(req.GetName())
	if reason != "" {
		return nil, apierror.InvalidArgument("name %s", reason)
	}
	now := x.s.cfg.Now()
	at := now
	if t := req.GetReturnTime(); t != nil {
		at = t.AsTime()
	}
	resp := &sendingv1.RecordReturnHomeResponse{}
	err := x.s.db.UpdateOnce(now, sendingv1.RosterService_RecordReturnHome_FullMethodName, req, resp, func(tx *bbolt.Tx) error {
		w, err := Read(tx, id)
		if err != nil {
			return err
		}
		if err := checkEtag(w, req.GetEtag()); err != nil {
			return err
		}
		w, err = x.s.ReturnHome(ctx, tx, id, at, req.GetNote())
		if err != nil {
			return err
		}
		resp.Worker = Masked(w, sendingv1.WorkerView_WORKER_VIEW_BASIC)
		return nil
	})
	if err != nil {
		return nil, err
	}
	x.s.cfg.Relays.Notify(ledgerclient.Destination)
	return resp, nil
}

// DeleteWorker erases a worker's personal data: the identity number (and its index entry), name,
// phone, sex, birth date and every other field an import set. What stays is a tombstone with the
// worker id, status, create time and erased = true, so that ledger events that name the worker
// id still name a known, anonymous worker. Deleting an erased worker returns the tombstone.
//
// The data is gone from the roster at once; bbolt may keep the old bytes in free pages of the
// file until they are reused.
func (x *rosterServer) DeleteWorker(ctx context.Context, req *sendingv1.DeleteWorkerRequest) (*sendingv1.DeleteWorkerResponse, error) {
	id, reason := ParseWorkerName(req.GetName())
	if reason != "" {
		return nil, apierror.InvalidArgument("name %s", reason)
	}
	now := x.s.cfg.Now()
	resp := &sendingv1.DeleteWorkerResponse{}
	err := x.s.db.UpdateOnce(now, sendingv1.RosterService_DeleteWorker_FullMethodName, req, resp, func(tx *bbolt.Tx) error {
		w, err := erase(tx, id, now)
		if err != nil {
			return err
		}
		resp.Worker = Masked(w, sendingv1.WorkerView_WORKER_VIEW_BASIC)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// erase replaces worker id by its tombstone and removes its identity number from the index
// (nothing if it was erased before), and returns the tombstone.
func erase(tx *bbolt.Tx, id string, now time.Time) (*sendingv1.Worker, error) {
	w, err := Read(tx, id)
	if err != nil || w.GetErased() {
		return w, err
	}
	index, err := openIDIndex(tx)
	if err != nil {
		return nil, err
	}
	if err := index.remove(w.GetIdNumber(), id); err != nil {
		return nil, err
	}
	w = tombstone(w, timestamppb.New(now))
	return w, putWorker(tx, w)
}

// tombstone returns what is kept of an erased worker.
func tombstone(w *sendingv1.Worker, now *timestamppb.Timestamp) *sendingv1.Worker {
	return &sendingv1.Worker{
		Name:       w.GetName(),
		WorkerId:   w.GetWorkerId(),
		Status:     w.GetStatus(),
		Erased:     true,
		CreateTime: w.GetCreateTime(),
		UpdateTime: now,
	}
}
