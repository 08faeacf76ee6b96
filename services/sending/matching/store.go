package matching

// The storage of matching (model: etcd server/storage/schema):
//
//   - BucketMatchRuns: big-endian run number -> sendingv1.MatchRun.
//   - BucketProposals: proposal id -> sendingv1.Proposal, and the nested bucket candidateNames:
//     proposal id -> the candidate's resource name in the receiving service (a StringValue).

import (
	"bytes"
	"fmt"
	"strings"

	"go.etcd.io/bbolt"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/paging"
	"github.com/eastwest/labourlink/services/platform/store"
)

// Bucket names of matching. The strings are those of the files on disk: never change them.
var (
	BucketProposals = []byte("proposals")
	BucketMatchRuns = []byte("matchRuns")
)

// Buckets are matching's buckets, for the sending service's store.Schema.
func Buckets() [][]byte { return [][]byte{BucketProposals, BucketMatchRuns} }

// candidateNamesBucket is the nested bucket of BucketProposals with the candidates' names.
var candidateNamesBucket = []byte("candidateNames")

var (
	runs      = store.NewTable[*sendingv1.MatchRun](BucketMatchRuns)
	proposals = store.NewTable[*sendingv1.Proposal](BucketProposals)
)

// Page sizes and page tokens of matching's Lists (services/platform/paging).
var (
	proposalsSize = paging.Size{Default: 100, Max: 1000}
	runsSize      = paging.Size{Default: 20, Max: 100}
)

// runsListing: ListMatchRuns has no filters; its keys are run numbers (8 bytes).
var runsListing = paging.For("runs").Keys(func(k []byte) bool { return len(k) == 8 })

func proposalsListing(r *sendingv1.ListProposalsRequest) paging.Listing {
	return paging.For("proposals", r.GetVacancy(), r.GetReceivingRegion(), r.GetState().String())
}

func getRun(tx *bbolt.Tx, seq uint64) (*sendingv1.MatchRun, error) {
	r, ok, err := runs.Get(tx, store.Uint64Key(seq))
	if err != nil {
		return nil, fmt.Errorf("read match run %d: %w", seq, err)
	}
	if !ok {
		return nil, apierror.NotFound("match run %s not found", RunName(seq))
	}
	return r, nil
}

func putRun(tx *bbolt.Tx, seq uint64, r *sendingv1.MatchRun) error {
	return runs.Put(tx, store.Uint64Key(seq), r)
}

// GetProposal reads the proposal with id (false if there is none).
func GetProposal(tx *bbolt.Tx, id string) (*sendingv1.Proposal, bool, error) {
	p, ok, err := proposals.Get(tx, []byte(id))
	if err != nil {
		return nil, false, fmt.Errorf("read proposal %s: %w", id, err)
	}
	if !ok {
		p = &sendingv1.Proposal{}
	}
	return p, ok, nil
}

// PutProposal stores p under the id of its resource name.
func PutProposal(tx *bbolt.Tx, p *sendingv1.Proposal) error {
	id := strings.TrimPrefix(p.GetName(), proposalNamePrefix)
	return proposals.Put(tx, []byte(id), p)
}

// ForEachProposal calls fn with every proposal, in id order (fn may keep it).
func ForEachProposal(tx *bbolt.Tx, fn func(*sendingv1.Proposal) error) error {
	return scanProposals(tx, store.Range{}, func(_ []byte, p *sendingv1.Proposal) (bool, error) {
		return true, fn(p)
	})
}

// scanProposals is proposals.Scan without the nested bucket of the candidates' names.
func scanProposals(tx *bbolt.Tx, r store.Range, fn func(k []byte, p *sendingv1.Proposal) (bool, error)) error {
	return proposals.Scan(tx, r, func(k []byte, p *sendingv1.Proposal) (bool, error) {
		if bytes.Equal(k, candidateNamesBucket) {
			return true, nil
		}
		return fn(k, p)
	})
}

// oldRunErrorField is the number of MatchRun's `string error` before version 3 of the sending
// schema (now reserved): the message of a failed run.
const oldRunErrorField = 12

// MigrateRunErrors converts the stored runs of a file older than version 3 of the sending
// schema: the message of a failed run in the old field 12 (`string error`) becomes the run's
// `error` status with code UNKNOWN (the code was not recorded) and that message, and field 12
// is dropped. Runs without it are left as they are.
func MigrateRunErrors(tx *bbolt.Tx) error {
	b := tx.Bucket(BucketMatchRuns)
	if b == nil {
		return nil
	}
	type conv struct {
		key []byte
		run *sendingv1.MatchRun
	}
	var todo []conv
	err := b.ForEach(func(k, v []byte) error {
		rest, msg, found, err := cutStringField(v, oldRunErrorField)
		if err != nil {
			return fmt.Errorf("match run %x: %w", k, err)
		}
		if !found {
			return nil
		}
		r := &sendingv1.MatchRun{}
		if err := proto.Unmarshal(rest, r); err != nil {
			return fmt.Errorf("decode match run %x: %w", k, err)
		}
		if msg != "" && r.GetError() == nil {
			r.Error = &rpcstatus.Status{Code: int32(codes.Unknown), Message: msg}
		}
		todo = append(todo, conv{bytes.Clone(k), r})
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range todo {
		if err := runs.Put(tx, c.key, c.run); err != nil {
			return err
		}
	}
	return nil
}

// cutStringField returns the encoded message m without its field num (a string; the last one
// wins, as in decoding), and that field's value.
func cutStringField(m []byte, num protowire.Number) (rest []byte, value string, found bool, err error) {
	for len(m) > 0 {
		n, typ, l := protowire.ConsumeTag(m)
		if l < 0 {
			return nil, "", false, protowire.ParseError(l)
		}
		fl := protowire.ConsumeFieldValue(n, typ, m[l:])
		if fl < 0 {
			return nil, "", false, protowire.ParseError(fl)
		}
		if n == num && typ == protowire.BytesType {
			s, _ := protowire.ConsumeBytes(m[l:])
			value, found = string(s), true
		} else {
			rest = append(rest, m[:l+fl]...)
		}
		m = m[l+fl:]
	}
	return rest, value, found, nil
}
