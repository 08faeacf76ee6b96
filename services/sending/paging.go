package sending

import (
	sendingv1 "github.com/eastwest/labourlink/proto/labour/sending/v1"
	"github.com/eastwest/labourlink/services/platform/paging"
)

// Page sizes and page tokens of the Lists (services/platform/paging): a token is bound to its List and
// the request's filters, never to the page size, which may change between pages.

var (
	proposalsSize = paging.Size{Default: 100, Max: 1000}
	runsSize      = paging.Size{Default: 20, Max: 100}
	batchesSize   = paging.Size{Default: 100, Max: 1000}
)

// runsListing: ListMatchRuns has no filters; its keys are run numbers (8 bytes).
var runsListing = paging.For("runs").Keys(func(k []byte) bool { return len(k) == 8 })

func proposalsListing(r *sendingv1.ListProposalsRequest) paging.Listing {
	return paging.For("proposals", r.GetVacancy(), r.GetReceivingRegion(), r.GetState().String())
}

func batchesListing(r *sendingv1.ListBatchesRequest) paging.Listing {
	return paging.For("batches", r.GetState().String(), r.GetReceivingRegion())
}
