package main

import (
	"strings"
	"testing"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/store"
)

func TestDescribeErrorExplainsStorageFull(t *testing.T) {
	t.Parallel()
	err := apierror.Status(apierror.New(store.ErrStorageFull, commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED, "%s", store.StorageFullMessage)).Err()
	got := describeError(err)
	for _, want := range []string{"Unavailable: storage full", "[STORAGE_FULL]", "free disk space", "run the same command again"} {
		if !strings.Contains(got, want) {
			t.Errorf("describeError = %q, want it to contain %q", got, want)
		}
	}
	if got := describeError(apierror.Status(apierror.NotFound("worker w-1 not found")).Err()); strings.Contains(got, "\n") {
		t.Errorf("hint for an error without one: %q", got)
	}
}
