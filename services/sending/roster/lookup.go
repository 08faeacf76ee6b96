package roster

// LookupWorker and its audit: every lookup by identity number is recorded in BucketLookupRecords
// (sequence number, big-endian -> sendingv1.LookupRecord without its name), in the same
// transaction that reads the index, so the record is on disk before the answer is sent. The
// record says who asked, when and which worker was found (or none), never the number.

import (
	"context"
	"encoding/binary"
	"strconv"
	"strings"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/types/known/timestamppb"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/idnumber"
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

// LookupWorker finds the live worker with an identity number and records the lookup.
func (x *rosterServer) LookupWorker(ctx context.Context, req *sendingv1.LookupWorkerRequest) (*sendingv1.LookupWorkerResponse, error) {
	idn := idnumber.Normalize(strings.TrimSpace(req.GetIdNumber()))
	rec := &sendingv1.LookupRecord{Caller: caller(ctx), LookupTime: timestamppb.New(x.s.cfg.Now())}
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
		n, err := lookupRecords.NextSeq(tx)
		if err != nil {
			return err
		}
		k := store.Uint64Key(n)
		name = lookupRecordName(k)
		return lookupRecords.Put(tx, k, rec)
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
