package roster

import (
	"fmt"
	"time"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
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

// workersListing binds a ListWorkers token to every filter of the request: status,
// home_county, occupation, registered_poor and health_check_passed (unset is not false),
// destination_province, available_by and updated_after; its keys are worker ids.
func workersListing(r *sendingv1.ListWorkersRequest) paging.Listing {
	optBool := func(b *bool) string {
		if b == nil {
			return "any"
		}
		return fmt.Sprint(*b)
	}
	by := ""
	if d := r.GetAvailableBy(); d != nil {
		by = civil.Format(d)
	}
	after := ""
	if t := r.GetUpdatedAfter(); t != nil {
		after = t.AsTime().UTC().Format(time.RFC3339Nano)
	}
	return paging.For("workers", r.GetStatus().String(), r.GetHomeCounty(), r.GetOccupation(), optBool(r.RegisteredPoor),
		r.GetDestinationProvince(), optBool(r.HealthCheckPassed), by, after).
		Keys(func(k []byte) bool { return ValidWorkerID(string(k)) })
}
