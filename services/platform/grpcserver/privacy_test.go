package grpcserver_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/eastwest/labourlink/services/codes/idnumber"
	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/privacy"
)

// The test service's value carries a phone on purpose (the tests above send one and check it is
// never logged), so it says so; an identity number is still refused there.
func (s *testService) PersonalDataFields() privacy.Allow {
	return privacy.Allow{"labourlink.grpcservertest.MutateRequest.value": privacy.Phone}
}

// testID is a valid identity number.
var testID = func() string {
	const first17 = "52010219900307123"
	return first17 + string(idnumber.CheckChar(first17))
}()

func TestPrivacyGuardUnary(t *testing.T) {
	f := start(t, grpcserver.Config{ServiceName: "test"})
	ctx := t.Context()
	tests := []struct {
		name      string
		requestID string
		value     string
		wantCode  codes.Code
		wantField string
	}{
		{"allowed phone", "p-1", "13800138000", codes.OK, ""},
		{"identity number in the value", "p-2", "身份证" + testID, codes.InvalidArgument, "value"},
		// The guard runs before validation: "bad" would give two violations of its own.
		{"identity number before the validator", "p3-" + testID, "bad", codes.InvalidArgument, "request_id"},
		{"wrong check character is not an identity number in text", "p-4", testID[:17] + "Z", codes.OK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.logs.TakeAll()
			before := f.svc.calls.Load()
			_, err := f.do(ctx, tt.requestID, tt.value)
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("code %v (%v), want %v", got, err, tt.wantCode)
			}
			if tt.wantField != "" {
				if got := fieldViolations(t, err); fmt.Sprint(got) != "["+tt.wantField+"]" {
					t.Errorf("field violations %v, want [%s]", got, tt.wantField)
				}
				if f.svc.calls.Load() != before {
					t.Error("the handler ran")
				}
			}
			if strings.Contains(status.Convert(err).Message(), testID) {
				t.Errorf("the error repeats the identity number: %v", err)
			}
			lines := rpcLines(f.logs)
			if len(lines) != 1 {
				t.Fatalf("%d log lines, want 1", len(lines))
			}
			if line := fmt.Sprint(lines[0].Message, lines[0].ContextMap()); strings.Contains(line, testID) {
				t.Errorf("the log line holds the identity number: %s", line)
			}
		})
	}
}

func TestPrivacyGuardStream(t *testing.T) {
	f := start(t, grpcserver.Config{ServiceName: "test"})
	_, err := f.collect(t.Context(), newReq("s-1", "a"), newReq("", "no. "+testID))
	if status.Code(err) != codes.InvalidArgument || fmt.Sprint(fieldViolations(t, err)) != "[value]" {
		t.Fatalf("identity number in a later message: %v, want INVALID_ARGUMENT on value", err)
	}
	if resp, err := f.collect(t.Context(), newReq("s-2", "13800138000")); err != nil || resp.GetValue() != "13800138000" {
		t.Fatalf("allowed phone: %v, %v", resp, err)
	}
}

// strictService is the test service without an allow list: no field may hold personal data.
type strictService struct{ svc *testService }

func (s strictService) Do(ctx context.Context, value string) (*wrapperspb.StringValue, error) {
	return s.svc.Do(ctx, value)
}

func TestPrivacyGuardWithoutAllowList(t *testing.T) {
	core, _ := observer.New(zapcore.DebugLevel)
	srv := grpcserver.New(grpcserver.Config{ServiceName: "strict"}, zap.New(core))
	svc := newTestService()
	srv.GRPC().RegisterService(&testServiceDesc, strictService{svc})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop(context.Background())
		<-done
	})
	err = conn.Invoke(t.Context(), methodDo, newReq("x", "call 138-0013-8000"), &wrapperspb.StringValue{})
	if status.Code(err) != codes.InvalidArgument || fmt.Sprint(fieldViolations(t, err)) != "[value]" {
		t.Fatalf("phone in a service without an allow list: %v, want INVALID_ARGUMENT on value", err)
	}
	if svc.calls.Load() != 0 {
		t.Error("the handler ran")
	}
}
