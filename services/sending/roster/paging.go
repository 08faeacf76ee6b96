package roster

import (
	"fmt"

	sendingv1 "github.com/eastwest/labourlink/proto/labour/sending/v1"
	"github.com/eastwest/labourlink/services/platform/paging"
)

// Page sizes and page tokens of the roster's Lists (services/platform/paging): a token is bound
// to its List and the request's filters, never to the page size, which may change between pages.
var (
	workersSize    = paging.Size{Default: 100, Max: 1000}
	rejectionsSize = paging.Size{Default: 1000, Max: 10000}
)

// rejectionsListing binds a ListImportRejections token to its import; its keys are rejection
// cursors.
func rejectionsListing(importID string) paging.Listing {
	return paging.For("import rejections", importID).Keys(func(k []byte) bool { return len(k) == rejectionCursorLen })
}

// workersListing binds a ListWorkers token to the status, home_county, occupation and
// registered_poor (unset is not false) of the request; its keys are worker ids.
func workersListing(r *sendingv1.ListWorkersRequest) paging.Listing {
	poor := "any"
	if r.RegisteredPoor != nil {
		poor = fmt.Sprint(r.GetRegisteredPoor())
	}
	return paging.For("workers", r.GetStatus().String(), r.GetHomeCounty(), r.GetOccupation(), poor).
		Keys(func(k []byte) bool { return ValidWorkerID(string(k)) })
}
