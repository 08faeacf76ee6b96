package demand

// The storage of the followers (model: etcd server/storage/schema):
//
//   - BucketDemandReplica: "<receiving region>/<vacancy id>" -> sendingv1.DemandVacancy.
//   - BucketFeedPositions: "demand/<receiving region>", "decision/<receiving region>" and
//     "employment/<receiving region>" -> sendingv1.FollowPosition.
//   - the follower counters, "follow/<code>/<name>", in the shared store.BucketCounters.

import (
	"bytes"

	"go.etcd.io/bbolt"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Bucket names of the followers. The strings are those of the files on disk: never change them.
var (
	BucketDemandReplica = []byte("demandReplica")
	BucketFeedPositions = []byte("feedPositions")
)

// Buckets are the followers' buckets, for the sending service's store.Schema.
func Buckets() [][]byte { return [][]byte{BucketDemandReplica, BucketFeedPositions} }

var (
	replica   = store.NewTable[*sendingv1.DemandVacancy](BucketDemandReplica)
	positions = store.NewTable[*sendingv1.FollowPosition](BucketFeedPositions)
)

// positionKey is the key of a feed position in BucketFeedPositions.
func positionKey(k feedKind, code string) []byte { return []byte(k.String() + "/" + code) }

// replicaKey is the key of a replicated vacancy in BucketDemandReplica.
func replicaKey(code, vacancyID string) []byte { return []byte(code + "/" + vacancyID) }

// counterKey is the key of a follower counter in store.BucketCounters.
func counterKey(code, name string) []byte { return []byte("follow/" + code + "/" + name) }

// Key is the key of vacancy vacancyID of receiving province code in the replica,
// "<code>/<vacancy id>" (the matcher's vacancy key).
func Key(code, vacancyID string) string { return string(replicaKey(code, vacancyID)) }

// VacancyByKey returns the replicated vacancy with key (see Key; false if the replica has none).
func VacancyByKey(tx *bbolt.Tx, key string) (*sendingv1.DemandVacancy, bool, error) {
	return replica.Get(tx, []byte(key))
}

// Vacancy returns the replicated vacancy vacancyID of receiving province code (false if the
// replica has none).
func Vacancy(tx *bbolt.Tx, code, vacancyID string) (*sendingv1.DemandVacancy, bool, error) {
	return replica.Get(tx, replicaKey(code, vacancyID))
}

// ForEachVacancy calls fn with the key (see Key) and every replicated vacancy (open or not), in
// (receiving region, vacancy id) order, until fn returns an error.
func ForEachVacancy(tx *bbolt.Tx, fn func(key string, dv *sendingv1.DemandVacancy) error) error {
	return replica.Scan(tx, store.Range{}, func(k []byte, dv *sendingv1.DemandVacancy) (bool, error) {
		return true, fn(string(k), dv)
	})
}

func getPosition(tx *bbolt.Tx, k feedKind, code string) (*sendingv1.FollowPosition, bool, error) {
	p, ok, err := positions.Get(tx, positionKey(k, code))
	if err != nil {
		return nil, false, err
	}
	if !ok {
		p = &sendingv1.FollowPosition{}
	}
	return p, ok, nil
}

func putPosition(tx *bbolt.Tx, k feedKind, code string, p *sendingv1.FollowPosition) error {
	return positions.Put(tx, positionKey(k, code), p)
}

func addCounter(tx *bbolt.Tx, key []byte, n uint64) error {
	if n == 0 {
		return nil
	}
	return store.SetCounter(tx, key, store.Counter(tx, key)+n)
}

// putReplica stores vacancy v of province code at revision rev unless the replica already
// holds that vacancy at rev or later; it reports whether it stored it.
func putReplica(tx *bbolt.Tx, code string, v *receivingv1.Vacancy, rev int64) (bool, error) {
	if v.GetVacancyId() == "" {
		return false, nil
	}
	key := replicaKey(code, v.GetVacancyId())
	old, found, err := replica.Get(tx, key)
	if err != nil {
		return false, err
	}
	if found && old.GetRevision() >= rev {
		return false, nil
	}
	return true, replica.Put(tx, key, &sendingv1.DemandVacancy{ReceivingRegion: code, Vacancy: v, Revision: rev})
}

// dropReplica removes the replica and the demand position of province code in tx.
func dropReplica(tx *bbolt.Tx, code string) error {
	var keys [][]byte
	if err := replica.Scan(tx, store.Range{Prefix: []byte(code + "/")}, func(k []byte, _ *sendingv1.DemandVacancy) (bool, error) {
		keys = append(keys, bytes.Clone(k))
		return true, nil
	}); err != nil {
		return err
	}
	for _, k := range keys {
		if err := replica.Delete(tx, k); err != nil {
			return err
		}
	}
	return positions.Delete(tx, positionKey(feedDemand, code))
}
