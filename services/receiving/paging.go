package receiving

import (
	"bytes"

	"github.com/eastwest/labourlink/services/platform/paging"
)

// Page tokens are paging tokens (services/platform/paging), bound to the List and its filters. Page sizes:
var (
	// listSize: the Lists of vacancies, candidates, intake batches and employment records.
	listSize = paging.Size{Default: 100, Max: 1000}
	// feedSize: the demand and decision feeds and ListOpenDemand.
	feedSize = paging.Size{Default: 500, Max: 5000}
	// rejectionsSize: ListVacancyImportRejections.
	rejectionsSize = paging.Size{Default: 1000, Max: 10000}
)

// startAfter positions a cursor-style scan after key: it returns the first key to look at.
func startAfter(after []byte) []byte {
	if after == nil {
		return nil
	}
	return append(bytes.Clone(after), 0)
}
