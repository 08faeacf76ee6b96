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

// TestHintsCallAsTheCLIDoes: the commands the CLI prints for a person to run next (scenario's
// grpcurl and labourlink lines) call the service the way this command did: plaintext, or with
// the same CA, certificate and key.
func TestHintsCallAsTheCLIDoes(t *testing.T) {
	for _, tc := range []struct {
		name         string
		d            dialer
		grpcurl, cli string
	}{
		{"plaintext", dialer{addr: "127.0.0.1:50051"}, "-plaintext", ""},
		{"mTLS", dialer{addr: "127.0.0.1:50051", caFile: "c/ca.pem", cert: "c/op.pem", keyFile: "c/op-key.pem"},
			"-cacert c/ca.pem -cert c/op.pem -key c/op-key.pem", " -tls-ca c/ca.pem -tls-cert c/op.pem -tls-key c/op-key.pem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.d.grpcurlFlags(); got != tc.grpcurl {
				t.Errorf("grpcurl flags %q, want %q", got, tc.grpcurl)
			}
			if got := tc.d.cliFlags(); got != tc.cli {
				t.Errorf("CLI flags %q, want %q", got, tc.cli)
			}
		})
	}
}
