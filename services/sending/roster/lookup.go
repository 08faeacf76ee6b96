package roster

// LookupWorker, FindWorkers and their audit: every lookup by identity number or by name is
// recorded in BucketLookupRecords (sequence number, big-endian -> sendingv1.LookupRecord without
// its name), in the same transaction that reads the index, so the record is on disk before the
// answer is sent. The record says who asked, when, what kind of lookup (and for a name, the
// county) and which workers were found (or none), never the number nor the name.

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/types/known/timestamppb"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/idnumber"
	"github.com/eastwest/labourlink/services/codes/personname"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/identity"
	"github.com/eastwest/labourlink/services/platform/paging"
	"github.com/eastwest/labourlink/services/platform/store"
)

// BucketLookupRecords: sequence number (8 bytes, big-endian) -> sendingv1.LookupRecord.
var BucketLookupRecords = []byte("lookupRecords")

var lookupRecords = store.NewTable[*sendingv1.LookupRecord](BucketLookupRecords)

// AnonymousCaller is the caller of a lookup recorded on a plaintext (development) server.
const AnonymousCaller = "anonymous"

var (
	lookupsSize    = paging.Size{Default: 100, Max: 1000}
	lookupsListing = paging.For("lookup records").Keys(func(k []byte) bool { return len(k) == 8 })
)

// lookupRecordName is the resource name of the record with key k.
func lookupRecordName(k []byte) string {
	return "lookupRecords/" + strconv.FormatUint(binary.BigEndian.Uint64(k), 10)
}

// caller is who makes the call of ctx: the identity of the verified client certificate, or
// AnonymousCaller when there is none (plaintext).
func caller(ctx context.Context) string {
	id, err := identity.Peer(ctx)
	if err != nil {
		return AnonymousCaller
	}
	return id.String()
}

// validateLookup checks a LookupWorkerRequest: the number as the import checks it.
func validateLookup(r *sendingv1.LookupWorkerRequest, v *apierror.Violations) {
	idn := idnumber.Normalize(strings.TrimSpace(r.GetIdNumber()))
	if idn == "" {
		v.Add("id_number", "is required: the 18-character resident identity number")
	} else if _, err := idnumber.Parse(idn); err != nil {
		v.Add("id_number", err.Error())
	}
	if _, ok := sendingv1.WorkerView_name[int32(r.GetView())]; !ok {
		v.Add("view", "is not a WorkerView")
	}
}

// recordLookup stores rec as the next lookup record in tx and returns its resource name.
func recordLookup(tx *bbolt.Tx, rec *sendingv1.LookupRecord) (string, error) {
	n, err := lookupRecords.NextSeq(tx)
	if err != nil {
		return "", err
	}
	k := store.Uint64Key(n)
	return lookupRecordName(k), lookupRecords.Put(tx, k, rec)
}

// LookupWorker finds the live worker with an identity number and records the lookup.
func (x *rosterServer) LookupWorker(ctx context.Context, req *sendingv1.LookupWorkerRequest) (*sendingv1.LookupWorkerResponse, error) {
	idn := idnumber.Normalize(strings.TrimSpace(req.GetIdNumber()))
	rec := &sendingv1.LookupRecord{Caller: caller(ctx), LookupTime: timestamppb.New(x.s.cfg.Now()), Kind: sendingv1.LookupKind_LOOKUP_KIND_ID_NUMBER}
	var w *sendingv1.Worker
	var name string
	err := x.s.db.Update(func(tx *bbolt.Tx) error {
		w = nil
		index, err := openIDIndex(tx)
		if err != nil {
			return err
		}
		if id := index.get(idn); id != "" {
			if w, err = Read(tx, id); err != nil {
				return err
			}
			rec.Worker = w.GetName()
		} else {
			rec.Worker = ""
		}
		name, err = recordLookup(tx, rec)
		return err
	})
	if err != nil {
		return nil, err
	}
	if w == nil {
		return nil, apierror.NotFound("no worker with this identity number (the lookup is recorded as %s)", name)
	}
	return &sendingv1.LookupWorkerResponse{Worker: Masked(w, req.GetView()), LookupRecord: name}, nil
}

// ListLookupRecords lists the records of lookups, oldest first.
func (x *rosterServer) ListLookupRecords(ctx context.Context, req *sendingv1.ListLookupRecordsRequest) (*sendingv1.ListLookupRecordsResponse, error) {
	after, err := lookupsListing.Decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &sendingv1.ListLookupRecordsResponse{}
	err = x.s.db.View(func(tx *bbolt.Tx) error {
		resp.LookupRecords = nil
		err := lookupRecords.Scan(tx, store.Range{After: after}, func(k []byte, r *sendingv1.LookupRecord) (bool, error) {
			if len(resp.LookupRecords) == lookupsSize.Of(req.GetPageSize()) {
				resp.NextPageToken = lookupsListing.Token(after)
				return false, nil
			}
			r.Name = lookupRecordName(k)
			if r.GetKind() == sendingv1.LookupKind_LOOKUP_KIND_UNSPECIFIED {
				r.Kind = sendingv1.LookupKind_LOOKUP_KIND_ID_NUMBER // recorded before kinds existed
			}
			resp.LookupRecords = append(resp.LookupRecords, r)
			after = append(after[:0:0], k...)
			return true, nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// findSize is the page size of FindWorkers: a hotline reads a few names, not a listing.
var findSize = paging.Size{Default: 20, Max: 100}

// findListing binds a FindWorkers token to its county, normalised name and prefix flag; its keys
// are keys of BucketWorkersByCountyName. The token holds the name as the index does: it is
// personal data of this province, returned only to the caller who sent the name.
func findListing(r *sendingv1.FindWorkersRequest) paging.Listing {
	return paging.For("find workers", r.GetHomeCounty(), nameKey(r.GetFullName()), strconv.FormatBool(r.GetPrefix())).
		Keys(func(k []byte) bool { return len(k) > countyLen && workerIDOfNameKey(k) != "" })
}

// validateFind checks a FindWorkersRequest: a county of this province and a name the import
// would accept (after normalisation, so that every middle-dot variant is accepted).
func (x *rosterServer) validateFind(r *sendingv1.FindWorkersRequest, v *apierror.Violations) {
	if c := r.GetHomeCounty(); c == "" {
		v.Add("home_county", "is required: the county-level code of the worker's home county, such as 520502")
	} else if _, reason := x.s.checker().homeCounty(c); reason != "" {
		v.Add("home_county", reason)
	}
	if _, reason := personname.Check(personname.Normalize(r.GetFullName())); reason != "" {
		v.Add("full_name", reason)
	}
	findSize.Check(v, r.GetPageSize())
	findListing(r).Check(v, r.GetPageToken())
}

// FindWorkers finds the live workers of a county by name through the county-and-name index and
// records the lookup (kind NAME, the county and the workers returned, never the name).
func (x *rosterServer) FindWorkers(ctx context.Context, req *sendingv1.FindWorkersRequest) (*sendingv1.FindWorkersResponse, error) {
	listing := findListing(req)
	after, err := listing.Decode(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	size := findSize.Of(req.GetPageSize())
	resp := &sendingv1.FindWorkersResponse{}
	err = x.s.db.Update(func(tx *bbolt.Tx) error {
		resp.Workers, resp.NextPageToken = nil, ""
		ids, keys, err := WorkerIDsByCountyName(tx, req.GetHomeCounty(), req.GetFullName(), req.GetPrefix(), after, size+1)
		if err != nil {
			return err
		}
		if len(ids) > size {
			ids = ids[:size]
			resp.NextPageToken = listing.Token(keys[size-1])
		}
		rec := &sendingv1.LookupRecord{
			Caller: caller(ctx), LookupTime: timestamppb.New(x.s.cfg.Now()), Kind: sendingv1.LookupKind_LOOKUP_KIND_NAME,
			HomeCounty: req.GetHomeCounty(), Prefix: req.GetPrefix(),
		}
		for _, id := range ids {
			w, err := Read(tx, id)
			if err != nil {
				return fmt.Errorf("index by county and name: %w", err)
			}
			resp.Workers = append(resp.Workers, Masked(w, sendingv1.WorkerView_WORKER_VIEW_BASIC))
			rec.FoundWorkers = append(rec.FoundWorkers, w.GetName())
		}
		if len(rec.FoundWorkers) > 0 {
			rec.Worker = rec.FoundWorkers[0]
		}
		resp.LookupRecord, err = recordLookup(tx, rec)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}
