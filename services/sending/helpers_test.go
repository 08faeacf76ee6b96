package sending

// Test helpers shared with the roster's tests (services/sending/roster/roster_helpers_test.go).

import (
	"context"
	"fmt"
	"github.com/eastwest/labourlink/services/sending/roster/rostertest"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
)

// testCounties are county codes of Guizhou.
var testCounties = regions.Default().CountiesOf(rosterRegion)

// rosterRegion is the sending province of the tests (Guizhou).
const rosterRegion = "520000"

// makeIDNumber returns a valid identity number issued in county for someone born on birth.
func makeIDNumber(county string, birth time.Time, seq int) string {
	return rostertest.IDNumber(county, birth, seq)
}

// importRows sends rows in chunks of chunk rows, the last marked final (rostertest.ImportRows).
func importRows(ctx context.Context, c sendingv1.RosterServiceClient, importID string, rows []*sendingv1.WorkerRow, chunk int) (*sendingv1.ImportWorkersResponse, error) {
	return rostertest.ImportRows(ctx, c, importID, rows, chunk)
}

// wantCode fails the test unless err is a gRPC status with code.
func wantCode(t testing.TB, err error, code codes.Code) *status.Status {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Fatalf("error = %v, want code %s", err, code)
	}
	return st
}

// testName is a plain, distinct name for the i-th test worker: names carry no digits
// (services/codes/personname), so i is written with Chinese numerals.
func testName(i int) string {
	const numerals = "零一二三四五六七八九"
	digits := []rune(numerals)
	name := []rune("工人")
	for _, c := range fmt.Sprint(i) {
		name = append(name, digits[c-'0'])
	}
	return string(name)
}

func violationFields(t *testing.T, err error) []string {
	t.Helper()
	st := wantCode(t, err, codes.InvalidArgument)
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				fields = append(fields, fv.GetField())
			}
		}
	}
	return fields
}

func fieldViolations(t *testing.T, err error) map[string]string {
	t.Helper()
	st := wantCode(t, err, codes.InvalidArgument)
	out := map[string]string{}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				out[fv.GetField()] = fv.GetDescription()
			}
		}
	}
	return out
}

// errorInfo returns the ErrorInfo of a gRPC error (nil if none).
func errorInfo(err error) *errdetails.ErrorInfo {
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}
