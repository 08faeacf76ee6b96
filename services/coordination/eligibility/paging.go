package eligibility

import (
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eastwest/labourlink/services/platform/paging"
)

// listingOf is the filters a page token is bound to.
type listingOf [5]string

func (l listingOf) paging() paging.Listing {
	return paging.For("eligibleWorkers", l[:]...).Keys(func(k []byte) bool { return len(k) > 0 })
}

// timeFilter is a time filter as a listing's filter value ("" when unset).
func timeFilter(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return fmt.Sprintf("%d.%09d", ts.GetSeconds(), ts.GetNanos())
}
