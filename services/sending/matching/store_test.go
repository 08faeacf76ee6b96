package matching

import (
	"context"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/store"
)

// The proposals bucket holds the nested bucket of the candidates' names: reads of proposals
// never take it for a proposal, and a candidate's name is kept once.
func TestProposalsBesideCandidateNames(t *testing.T) {
	t.Parallel()
	db, err := store.Open(filepath.Join(t.TempDir(), "sending.db"), store.Schema{Name: "sending", Version: 2, Buckets: Buckets()}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ids := []string{ProposalID("v1", "520000-AAAAAAAAAAAAAAAA"), ProposalID("v1", "520000-BBBBBBBBBBBBBBBB"), ProposalID("v2", "520000-AAAAAAAAAAAAAAAA")}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, id := range ids {
			if err := PutProposal(tx, &sendingv1.Proposal{Name: proposalNamePrefix + id, State: proposalSubmitted, ReceivingRegion: "440000"}); err != nil {
				return err
			}
		}
		for range 2 {
			if err := PutCandidateName(tx, ids[0], "candidates/c1"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	if err := db.View(func(tx *bbolt.Tx) error {
		if err := ForEachProposal(tx, func(p *sendingv1.Proposal) error {
			seen = append(seen, p.GetName())
			return nil
		}); err != nil {
			return err
		}
		name, err := CandidateName(tx, ids[0])
		if err != nil || name != "candidates/c1" {
			t.Errorf("candidate name = %q, %v", name, err)
		}
		if name, err := CandidateName(tx, ids[1]); err != nil || name != "" {
			t.Errorf("candidate name of a proposal without one = %q, %v", name, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 3 {
		t.Fatalf("proposals read %v, want the 3", seen)
	}
	// ListProposals pages over them, not over the nested bucket, and by vacancy.
	x := &matchingServer{s: &Service{db: db}}
	var all []*sendingv1.Proposal
	token := ""
	for {
		resp, err := x.ListProposals(context.Background(), &sendingv1.ListProposalsRequest{PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, resp.GetProposals()...)
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(all) != 3 {
		t.Errorf("ListProposals gave %d proposals, want 3", len(all))
	}
	v1, err := x.ListProposals(context.Background(), &sendingv1.ListProposalsRequest{Vacancy: "vacancies/v1"})
	if err != nil || len(v1.GetProposals()) != 2 || v1.GetNextPageToken() != "" {
		t.Errorf("proposals of v1 = %v, %v", v1, err)
	}
}
