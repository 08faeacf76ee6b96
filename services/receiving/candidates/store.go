package candidates

import (
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/types/known/timestamppb"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/receiving/internal/check"
	"github.com/eastwest/labourlink/services/receiving/internal/feedlog"
)

// Storage of candidates (model: etcd server/storage/schema). Bucket names are those of the
// files written before the service was split into subsystems; they must not change.
var (
	// candidateTable holds candidates under their id.
	candidateTable = store.NewTable[*receivingv1.Candidate]([]byte("candidates"))
	// indexBucket maps sending_region+"\x00"+worker_id+"\x00"+vacancy_id to the candidate id,
	// so that a resubmitted candidate is found.
	indexBucket = []byte("candidateIndex")

	// Decisions is the decision feed: every change of a candidate's state after submission,
	// under its revision (bucket decisions).
	Decisions = feedlog.Feed[*receivingv1.Candidate]{
		Name:  "decision",
		Table: store.NewTable[*receivingv1.Candidate]([]byte("decisions")),
		// Counters (store.BucketCounters).
		HeadKey: []byte("decision.head"), CompactedKey: []byte("decision.compacted"),
		Relist: "re-read your candidates with ListCandidates (filter sending_region) and follow the feed from the head_revision of a ListDecisions call made before that listing",
	}

	// seqKey names the counter of candidate ids.
	seqKey = []byte("candidate.seq")
)

// Buckets are the buckets of candidates and their decision feed (for the service's Schema).
func Buckets() [][]byte {
	return [][]byte{candidateTable.Name(), indexBucket, Decisions.Table.Name()}
}

func indexKey(sending, workerID, vacancyID string) []byte {
	return []byte(sending + "\x00" + workerID + "\x00" + vacancyID)
}

// Get reads a candidate by id (NOT_FOUND if there is none).
func Get(tx *bbolt.Tx, id string) (*receivingv1.Candidate, error) {
	c, ok, err := candidateTable.Get(tx, []byte(id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, apierror.NotFound("candidate %s/%s not found", check.Candidates, id)
	}
	return c, nil
}

// Find reads the candidate sending submitted for worker and vacancy id vacancyID, if any.
func Find(tx *bbolt.Tx, sending, workerID, vacancyID string) (*receivingv1.Candidate, bool, error) {
	id := tx.Bucket(indexBucket).Get(indexKey(sending, workerID, vacancyID))
	if id == nil {
		return nil, false, nil
	}
	c, err := Get(tx, string(id))
	return c, err == nil, err
}

// add stores a new candidate and indexes it; a rejected one (a closed or expired vacancy) is
// also a decision.
func add(tx *bbolt.Tx, c *receivingv1.Candidate, vacancyID string, now time.Time) error {
	var err error
	if c.GetState() == Rejected {
		err = recordDecision(tx, c, now)
	} else {
		err = candidateTable.Put(tx, []byte(c.GetCandidateId()), c)
	}
	if err != nil {
		return err
	}
	return tx.Bucket(indexBucket).Put(indexKey(c.GetSendingRegion(), c.GetWorkerId(), vacancyID), []byte(c.GetCandidateId()))
}

// recordDecision stores c after a state change, at the decision feed's next revision.
func recordDecision(tx *bbolt.Tx, c *receivingv1.Candidate, now time.Time) error {
	c.UpdateTime = timestamppb.New(now)
	if _, err := Decisions.Append(tx, func(rev int64) *receivingv1.Candidate {
		c.Revision = rev
		return c
	}); err != nil {
		return err
	}
	return candidateTable.Put(tx, []byte(c.GetCandidateId()), c)
}
