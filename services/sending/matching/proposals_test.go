package matching

import (
	"strings"
	"testing"

	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	const (
		accepted  = receivingv1.CandidateState_CANDIDATE_STATE_ACCEPTED
		rejected  = receivingv1.CandidateState_CANDIDATE_STATE_REJECTED
		withdrawn = receivingv1.CandidateState_CANDIDATE_STATE_WITHDRAWN
		pending   = receivingv1.CandidateState_CANDIDATE_STATE_PENDING
	)
	tests := []struct {
		name     string
		proposal sendingv1.ProposalState
		cand     receivingv1.CandidateState
		reason   string
		want     decision
	}{
		{"accepted while pending submission", proposalPending, accepted, "good", decision{effect: decisionAccepts, reason: "good"}},
		{"accepted once submitted", proposalSubmitted, accepted, "", decision{effect: decisionAccepts}},
		{"accepted again", proposalAccepted, accepted, "", decision{}},
		{"accepted after this side gave up", proposalRejected, accepted, "", decision{}},
		{"rejected with a reason", proposalSubmitted, rejected, "no forklift licence", decision{effect: decisionCloses, reason: "no forklift licence", from: stProposed}},
		{"rejected without a reason", proposalSubmitted, rejected, "", decision{effect: decisionCloses, reason: "rejected by the employer", from: stProposed}},
		{"rejected after it was accepted", proposalAccepted, rejected, "", decision{}},
		{"rejected again", proposalRejected, rejected, "", decision{}},
		{"withdrawn while undecided", proposalSubmitted, withdrawn, "no-show", decision{effect: decisionCloses, reason: "withdrawn: no-show", from: stProposed}},
		{"withdrawn after it was accepted", proposalAccepted, withdrawn, "no-show", decision{effect: decisionCloses, reason: "withdrawn: no-show", from: stAccepted}},
		{"withdrawn after it ended", proposalRejected, withdrawn, "", decision{}},
		{"still pending", proposalSubmitted, pending, "", decision{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decide(&sendingv1.Proposal{State: tt.proposal}, &receivingv1.Candidate{State: tt.cand, StateReason: tt.reason})
			if got != tt.want {
				t.Errorf("decide(%s, %s) = %+v, want %+v", tt.proposal, tt.cand, got, tt.want)
			}
		})
	}
	long := decide(&sendingv1.Proposal{State: proposalSubmitted}, &receivingv1.Candidate{State: accepted, StateReason: strings.Repeat("长", 400)})
	if len(long.reason) > 500 || !strings.HasPrefix(strings.Repeat("长", 400), long.reason) {
		t.Errorf("accepted reason of %d bytes, want at most 500 cut at a character", len(long.reason))
	}
}

func TestClip(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abcdef", 3, "abc"},
		{"贵州省", 4, "贵"}, // 3 bytes per character: cut before the second
		{"贵州省", 6, "贵州"},
		{"", 0, ""},
	} {
		if got := Clip(tt.s, tt.n); got != tt.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}
