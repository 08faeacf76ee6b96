// Package check holds the request checks the coordination services share: province codes and
// the page sizes of their List calls.
package check

import (
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/paging"
)

// PageSize is the page size of every coordination List call; a size above the maximum is
// served as the maximum, a negative one refused (paging.Size.Check), as in every service.
var PageSize = paging.Size{Default: 100, Max: 1000}

// Province adds a violation unless code is a province code (or empty and optional).
func Province(v *apierror.Violations, t *regions.Table, field, code string, required bool) {
	if code == "" {
		if required {
			v.Add(field, "is required: a 6-digit GB/T 2260 province code such as 520000")
		}
		return
	}
	if t.IsProvince(code) {
		return
	}
	if err := t.CheckCode(code); err != nil {
		v.Add(field, err.Error())
		return
	}
	v.Addf(field, "%s (%s) is not a province: use the province code %s0000", code, t.Name(code), code[:2])
}
