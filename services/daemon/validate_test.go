package daemon_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	_ "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	_ "github.com/eastwest/labourlink/proto/labourlink/ledgerwatch/v1"
	_ "github.com/eastwest/labourlink/proto/labourlink/outbox/v1"
	_ "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	_ "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/devtools/proctest"
)

// TestEveryMethodIsValidated sends an empty request to every method of every labourlink.* service
// that each kind of process serves, and fails when one reaches a handler without its
// ValidateRequest naming the request type (the server answers INTERNAL "no request
// validation"): an RPC added to the API without validation fails here instead of running on
// unchecked input. It also fails when a served method is not implemented.
func TestEveryMethodIsValidated(t *testing.T) {
	t.Parallel()
	served := map[daemon.Kind][]string{
		daemon.Sending:      {"labourlink.sending.v1.RosterService", "labourlink.sending.v1.MatchingService", "labourlink.sending.v1.TransportService", "labourlink.sending.v1.ReturneeService", "labourlink.sending.v1.DynamicsService", "labourlink.sending.v1.SubsidyService", "labourlink.outbox.v1.OutboxService", "labourlink.ledgerwatch.v1.LedgerWatchService", "labourlink.backup.v1.BackupService"},
		daemon.Receiving:    {"labourlink.receiving.v1.VacancyService", "labourlink.receiving.v1.DemandFeedService", "labourlink.receiving.v1.CandidateService", "labourlink.receiving.v1.IntakeService", "labourlink.receiving.v1.EmploymentFeedService", "labourlink.outbox.v1.OutboxService", "labourlink.ledgerwatch.v1.LedgerWatchService", "labourlink.backup.v1.BackupService"},
		daemon.Coordination: {"labourlink.coordination.v1.RegistryService", "labourlink.coordination.v1.LedgerService", "labourlink.coordination.v1.ReconciliationService", "labourlink.coordination.v1.AssessmentService", "labourlink.coordination.v1.DynamicsService", "labourlink.coordination.v1.EligibilityService", "labourlink.backup.v1.BackupService"},
	}
	// Every service of the API is served by some kind.
	all := map[string]bool{}
	for _, names := range served {
		for _, n := range names {
			all[n] = true
		}
	}
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(fd.Package()), "labourlink.") {
			return true
		}
		for i := range fd.Services().Len() {
			if n := string(fd.Services().Get(i).FullName()); !all[n] {
				t.Errorf("service %s is served by no kind of process in this test: add it", n)
			}
		}
		return true
	})
	for kind, names := range served {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			cfg := daemon.Config{Kind: kind, Listen: proctest.FreeAddr(t), DataDir: t.TempDir(), LogLevel: "info", ShutdownTimeout: 2 * time.Second}
			switch kind {
			case daemon.Sending:
				cfg.Region = "520000"
			case daemon.Receiving:
				cfg.Region = "440000"
			}
			start(t, cfg, zaptest.NewLogger(t))
			cc, err := grpc.NewClient(cfg.Listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			methods := 0
			for _, name := range names {
				d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				sd := d.(protoreflect.ServiceDescriptor)
				for i := range sd.Methods().Len() {
					md := sd.Methods().Get(i)
					full := "/" + name + "/" + string(md.Name())
					err := callEmpty(cc, full, md)
					methods++
					switch c := status.Code(err); {
					case c == codes.Internal && strings.Contains(err.Error(), "no request validation"):
						t.Errorf("%s: its ValidateRequest does not name %s: %v", full, md.Input().FullName(), err)
					case c == codes.Unimplemented:
						t.Errorf("%s is in the API but not implemented: %v", full, err)
					}
				}
			}
			if methods == 0 {
				t.Fatal("no methods called")
			}
		})
	}
}

// callEmpty calls method with an empty request message and returns the call's error (for a
// streaming method: of the first answer after one empty message and a half-close).
func callEmpty(cc *grpc.ClientConn, method string, md protoreflect.MethodDescriptor) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := dynamicpb.NewMessage(md.Input())
	resp := dynamicpb.NewMessage(md.Output())
	if !md.IsStreamingClient() && !md.IsStreamingServer() {
		return cc.Invoke(ctx, method, req, resp)
	}
	s, err := cc.NewStream(ctx, &grpc.StreamDesc{ClientStreams: md.IsStreamingClient(), ServerStreams: md.IsStreamingServer()}, method)
	if err != nil {
		return err
	}
	if err := s.SendMsg(req); err != nil {
		return err
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	return s.RecvMsg(resp)
}
