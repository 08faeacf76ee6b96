package vacancies

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/paging"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/receiving/internal/feedlog"
)

// Storage of vacancies (model: etcd server/storage/schema). Bucket names are those of the
// files written before the service was split into subsystems; they must not change.
var (
	// vacancyTable holds vacancies under their id.
	vacancyTable = store.NewTable[*receivingv1.Vacancy]([]byte("vacancies"))

	// Demand is the demand feed: every change to a vacancy, under its revision (bucket
	// vacancyChanges). Save appends to it in the transaction of the change.
	Demand = feedlog.Feed[*receivingv1.DemandChange]{
		Name:  "demand",
		Table: store.NewTable[*receivingv1.DemandChange]([]byte("vacancyChanges")),
		// Counters (store.BucketCounters).
		HeadKey: []byte("demand.head"), CompactedKey: []byte("demand.compacted"),
		Relist: "re-list the open vacancies with ListOpenDemand and follow the feed from the revision that listing returns",
	}

	// importsBucket holds vacancy imports (see vacancyimport.go for its keys); the summaries
	// in it are importSummaries.
	importsBucket   = []byte("imports")
	importSummaries = store.NewTable[*commonv1.ImportSummary](importsBucket)
	// importRejections holds the rejected rows of imports under import_id + 0x00 + row number.
	importRejections = store.NewTable[*commonv1.RowRejection]([]byte("importRejections"))

	// referenceBucket maps employer_credit_code + 0x00 + external_reference to the id of the
	// vacancy with that natural key (receiving schema version 2; vacancies without a reference
	// are not in it).
	referenceBucket = []byte("vacancyByReference")

	// seqKey names the counter of vacancy ids.
	seqKey = []byte("vacancy.seq")
)

// Buckets are the buckets of vacancies, their feed and their imports (for the service's Schema).
func Buckets() [][]byte {
	return [][]byte{vacancyTable.Name(), Demand.Table.Name(), importsBucket, importRejections.Name(), referenceBucket}
}

func referenceKey(creditCode, reference string) []byte {
	return []byte(creditCode + "\x00" + reference)
}

// FindByReference returns the id of the vacancy of employer creditCode with external reference
// ref, if there is one (never for an empty ref).
func FindByReference(tx *bbolt.Tx, creditCode, ref string) (string, bool) {
	if ref == "" {
		return "", false
	}
	id := tx.Bucket(referenceBucket).Get(referenceKey(creditCode, ref))
	return string(id), id != nil
}

// BuildReferenceIndex creates the index of natural keys, if missing, and indexes every stored
// vacancy that has an external reference (for the migration to receiving schema version 2;
// vacancies stored before it have none, so it finds nothing to index there).
func BuildReferenceIndex(tx *bbolt.Tx) (int, error) {
	idx, err := tx.CreateBucketIfNotExists(referenceBucket)
	if err != nil {
		return 0, err
	}
	if tx.Bucket(vacancyTable.Name()) == nil {
		return 0, nil
	}
	type entry struct{ key, id []byte }
	var entries []entry
	err = vacancyTable.Scan(tx, store.Range{}, func(k []byte, v *receivingv1.Vacancy) (bool, error) {
		if v.GetExternalReference() != "" {
			entries = append(entries, entry{referenceKey(v.GetEmployerCreditCode(), v.GetExternalReference()), []byte(v.GetVacancyId())})
		}
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		if err := idx.Put(e.key, e.id); err != nil {
			return 0, err
		}
	}
	return len(entries), nil
}

// Get reads a vacancy by id (NOT_FOUND if there is none).
func Get(tx *bbolt.Tx, id string) (*receivingv1.Vacancy, error) {
	v, ok, err := vacancyTable.Get(tx, []byte(id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, apierror.NotFound("vacancy %s not found", Name(id))
	}
	return v, nil
}

// Save stores v as changed at now: it derives the status, gives v the demand feed's next
// revision and records the change in the feed, in tx.
func Save(tx *bbolt.Tx, v *receivingv1.Vacancy, now time.Time) error {
	v.Status = DeriveStatus(v, civil.Today(now))
	v.UpdateTime = timestamppb.New(now)
	_, err := Demand.Append(tx, func(rev int64) *receivingv1.DemandChange {
		v.Revision = rev
		v.Etag = Etag(v)
		return &receivingv1.DemandChange{Revision: rev, Vacancy: v, ChangeTime: timestamppb.New(now)}
	})
	if err != nil {
		return err
	}
	return vacancyTable.Put(tx, []byte(v.GetVacancyId()), v)
}

// create stores a new vacancy of province region from the client fields of in (already valid),
// in tx, and indexes its external reference. The caller has checked that the reference is not
// taken (FindByReference).
func create(tx *bbolt.Tx, region string, in *receivingv1.Vacancy, now time.Time) (*receivingv1.Vacancy, error) {
	seq, err := store.NextCounter(tx, seqKey)
	if err != nil {
		return nil, err
	}
	v := fromClient(fmt.Sprintf("%s-V%010d", region, seq), in)
	v.CreateTime = timestamppb.New(now)
	if err := Save(tx, v, now); err != nil {
		return nil, err
	}
	if ref := v.GetExternalReference(); ref != "" {
		if err := tx.Bucket(referenceBucket).Put(referenceKey(v.GetEmployerCreditCode(), ref), []byte(v.GetVacancyId())); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// Filter selects vacancies; zero fields match everything.
type Filter struct {
	Status     receivingv1.VacancyStatus
	Occupation string
	County     string
	Employer   string
}

// listing is what a page token of vacancies is bound to.
func (f Filter) listing() paging.Listing {
	return paging.For("vacancies", f.Status.String(), f.Occupation, f.County, f.Employer)
}

func (f Filter) match(v *receivingv1.Vacancy) bool {
	return (f.Status == 0 || v.GetStatus() == f.Status) &&
		(f.Occupation == "" || v.GetOccupation() == f.Occupation) &&
		(f.County == "" || v.GetWorkCounty() == f.County) &&
		(f.Employer == "" || v.GetEmployerCreditCode() == f.Employer)
}

// Page is a page of vacancies.
type Page struct {
	Vacancies []*receivingv1.Vacancy
	Next      string
	// Revision is the demand feed's head revision in the snapshot of the page.
	Revision int64
}

// List reads one page of vacancies matching f (status derived at read time, now) in id order,
// with the demand feed's head revision of the same snapshot.
func List(db *feedlog.DB, f Filter, token string, size int, now time.Time) (Page, error) {
	after, err := f.listing().Decode(token)
	if err != nil {
		return Page{}, err
	}
	day := civil.Today(now)
	var page Page
	err = db.View(func(tx *bbolt.Tx) error {
		page.Revision = Demand.Head(tx)
		p, err := vacancyTable.Page(tx, store.Range{After: after}, size, func(_ []byte, v *receivingv1.Vacancy) bool {
			return f.match(present(v, day))
		})
		page.Vacancies = p.Items
		if p.Last != nil {
			page.Next = f.listing().Token(p.Last)
		}
		return err
	})
	return page, err
}

// expiring reports whether the sweep records EXPIRED for v on day.
func expiring(v *receivingv1.Vacancy, day *commonv1.Date) bool {
	return v.GetStatus() != Expired && DeriveStatus(v, day) == Expired
}

// SweepExpired records EXPIRED for every vacancy whose stored status is OPEN or FILLED and
// whose valid-through date has passed at now, each as a change in the demand feed. It returns
// how many.
func SweepExpired(ctx context.Context, db *feedlog.DB, now time.Time) (int, error) {
	day := civil.Today(now)
	var ids []string
	err := db.View(func(tx *bbolt.Tx) error {
		return vacancyTable.Scan(tx, store.Range{}, func(k []byte, v *receivingv1.Vacancy) (bool, error) {
			if expiring(v, day) {
				ids = append(ids, string(k))
			}
			return true, nil
		})
	})
	if err != nil {
		return 0, err
	}
	done := 0
	const chunk = 500
	for len(ids) > 0 && ctx.Err() == nil {
		n := min(chunk, len(ids))
		part := ids[:n]
		ids = ids[n:]
		err := db.Update(func(tx *bbolt.Tx) error {
			for _, id := range part {
				v, err := Get(tx, id)
				if err != nil {
					return err
				}
				if !expiring(v, day) {
					continue // changed since the scan
				}
				if err := Save(tx, v, now); err != nil {
					return err
				}
				done++
			}
			return nil
		})
		if err != nil {
			return done, err
		}
	}
	return done, nil
}
