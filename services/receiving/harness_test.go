package receiving

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	"github.com/eastwest/labourlink/services/codes/creditcode"
	"github.com/eastwest/labourlink/services/codes/idnumber"
	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/store"
)

// The test federation: Guangdong receives from Guizhou (paired by default), not from Yunnan.
const (
	region      = "440000"
	sending     = "520000"
	unpaired    = "530000"
	workCounty  = "440305" // 南山区, Shenzhen
	homeCounty  = "520102" // 南明区, Guiyang
	testStartAt = "2025-03-01T10:00:00+08:00"
)

// clock is a settable clock for the service.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a receiving service on a real bbolt file and a real loopback listener.
type env struct {
	t      *testing.T
	path   string
	cfg    Config
	clock  *clock
	db     *store.DB
	svc    *Service
	srv    *grpcserver.Server
	conn   *grpc.ClientConn
	lis    *bufconn.Listener
	vac    receivingv1.VacancyServiceClient
	feed   receivingv1.DemandFeedServiceClient
	cand   receivingv1.CandidateServiceClient
	intake receivingv1.IntakeServiceClient
	emp    receivingv1.EmploymentFeedServiceClient
}

func newEnv(t *testing.T, adjust ...func(*Config)) *env {
	t.Helper()
	start, err := time.Parse(time.RFC3339, testStartAt)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, path: filepath.Join(t.TempDir(), "receiving.db"), clock: &clock{t: start}}
	e.cfg = Config{Region: region, Now: e.clock.Now}
	for _, a := range adjust {
		a(&e.cfg)
	}
	e.start()
	t.Cleanup(e.stop)
	return e
}

func (e *env) start() {
	t := e.t
	t.Helper()
	lg := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	db, err := store.Open(e.path, Schema, lg)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(db, lg, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcserver.New(grpcserver.Config{ServiceName: "receiving", ShutdownTimeout: 2 * time.Second}, lg)
	svc.Register(srv.GRPC())
	// In process over bufconn: these tests talk gRPC to the service; crashes of a real process
	// are process_test.go's.
	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(lis) }()
	srv.SetServing(svc.ServiceNames()...)
	conn, err := grpc.NewClient("passthrough:///receiving", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	e.db, e.svc, e.srv, e.conn, e.lis = db, svc, srv, conn, lis
	e.vac = receivingv1.NewVacancyServiceClient(conn)
	e.feed = receivingv1.NewDemandFeedServiceClient(conn)
	e.cand = receivingv1.NewCandidateServiceClient(conn)
	e.intake = receivingv1.NewIntakeServiceClient(conn)
	e.emp = receivingv1.NewEmploymentFeedServiceClient(conn)
}

// dial opens another client connection to the service (a second client), closed at the end of
// the test.
func (e *env) dial() *grpc.ClientConn {
	e.t.Helper()
	lis := e.lis
	conn, err := grpc.NewClient("passthrough:///receiving", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return conn
}

func (e *env) stop() {
	if e.db == nil {
		return
	}
	e.conn.Close()
	e.srv.Stop(context.Background())
	if e.svc.closePairing != nil { // Run closes it; these tests do not start Run
		_ = e.svc.closePairing()
	}
	if err := e.db.Close(); err != nil {
		e.t.Errorf("close store: %v", err)
	}
	e.db = nil
}

// restart stops the server, closes the data file, and starts again on the same file.
func (e *env) restart() {
	e.stop()
	e.start()
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// creditCode returns a valid unified social credit code with the given 9-character
// organisation identifier.
func creditCode(t testing.TB, org string) string {
	first := "91440300" + org
	c, err := creditcode.CheckChar(first)
	if err != nil {
		t.Fatal(err)
	}
	return first + string(c)
}

// idNumber returns a valid identity number for the first 17 digits.
func idNumber(first17 string) string {
	return first17 + string(idnumber.CheckChar(first17))
}

func date(y, m, d int32) *commonv1.Date { return &commonv1.Date{Year: y, Month: m, Day: d} }

// goodVacancy is a valid vacancy (the test clock starts on 2025-03-01).
func goodVacancy(t testing.TB) *receivingv1.Vacancy {
	return &receivingv1.Vacancy{
		EmployerName:       "深圳市南山电子装配有限公司",
		EmployerCreditCode: creditCode(t, "MA5FN1234"),
		WorkCounty:         workCounty,
		Occupation:         "8212",
		Headcount:          5,
		MonthlyWageMinYuan: 4500,
		MonthlyWageMaxYuan: 6000,
		StartDate:          date(2025, 4, 1),
		ValidThrough:       date(2025, 6, 30),
		MinAge:             proto.Int32(18),
		MaxAge:             proto.Int32(45),
		HousingProvided:    true,
		MealsProvided:      true,
		Contact:            "0755-26000000 人事部",
	}
}

func (e *env) createVacancy(v *receivingv1.Vacancy) *receivingv1.Vacancy {
	e.t.Helper()
	resp, err := e.vac.CreateVacancy(ctx(e.t), &receivingv1.CreateVacancyRequest{Vacancy: v})
	if err != nil {
		e.t.Fatalf("CreateVacancy: %v", err)
	}
	return resp.GetVacancy()
}

func candidate(vacancy, worker string) *receivingv1.Candidate {
	return &receivingv1.Candidate{
		Vacancy: vacancy, WorkerId: worker, FullName: "王 小明", Sex: commonv1.Sex_SEX_MALE, Age: 28,
		Occupations: []string{"8212"}, HomeCounty: homeCounty, RegisteredPoor: true,
	}
}

func (e *env) submit(cs ...*receivingv1.Candidate) []*receivingv1.Candidate {
	e.t.Helper()
	return e.submitFrom(sending, cs...)
}

// submitFrom is submit for sending province from.
func (e *env) submitFrom(from string, cs ...*receivingv1.Candidate) []*receivingv1.Candidate {
	e.t.Helper()
	resp, err := e.cand.SubmitCandidates(ctx(e.t), &receivingv1.SubmitCandidatesRequest{SendingRegion: from, Candidates: cs})
	if err != nil {
		e.t.Fatalf("SubmitCandidates: %v", err)
	}
	if len(resp.GetRefusals()) > 0 {
		e.t.Fatalf("SubmitCandidates refused %v", resp.GetRefusals())
	}
	return resp.GetCandidates()
}

func (e *env) accept(name string) *receivingv1.Candidate {
	e.t.Helper()
	resp, err := e.cand.DecideCandidate(ctx(e.t), &receivingv1.DecideCandidateRequest{Name: name, Decision: receivingv1.Decision_DECISION_ACCEPT})
	if err != nil {
		e.t.Fatalf("DecideCandidate %s: %v", name, err)
	}
	return resp.GetCandidate()
}

// head returns the demand feed's head revision.
func (e *env) head() int64 {
	e.t.Helper()
	resp, err := e.feed.ListDemandChanges(ctx(e.t), &receivingv1.ListDemandChangesRequest{SendingRegion: sending, PageSize: 1})
	if err != nil {
		e.t.Fatalf("ListDemandChanges: %v", err)
	}
	return resp.GetHeadRevision()
}

// ledgerEvents reads the ledger events in the outbox, in order.
func (e *env) ledgerEvents() []*coordinationv1.LedgerEvent {
	e.t.Helper()
	events, err := readOutbox(e.db)
	if err != nil {
		e.t.Fatal(err)
	}
	return events
}

// readOutbox decodes the entries of the coordination outbox (stored as OutboxEntry: field 2 is
// the payload, a google.protobuf.Any).
func readOutbox(db *store.DB) ([]*coordinationv1.LedgerEvent, error) {
	var out []*coordinationv1.LedgerEvent
	err := db.View(func(tx *bbolt.Tx) error {
		top := tx.Bucket(store.BucketOutbox)
		if top == nil {
			return nil
		}
		b := top.Bucket([]byte(LedgerDestination))
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			for len(v) > 0 {
				num, typ, n := protowire.ConsumeTag(v)
				if n < 0 {
					return protowire.ParseError(n)
				}
				v = v[n:]
				if num == 2 && typ == protowire.BytesType {
					raw, n := protowire.ConsumeBytes(v)
					if n < 0 {
						return protowire.ParseError(n)
					}
					a := &anypb.Any{}
					if err := proto.Unmarshal(raw, a); err != nil {
						return err
					}
					ev := &coordinationv1.LedgerEvent{}
					if err := a.UnmarshalTo(ev); err != nil {
						return err
					}
					out = append(out, ev)
					v = v[n:]
					continue
				}
				n = protowire.ConsumeFieldValue(num, typ, v)
				if n < 0 {
					return protowire.ParseError(n)
				}
				v = v[n:]
			}
			return nil
		})
	})
	return out, err
}

// wantCode fails unless err has the code (and, if given, the ErrorInfo reason).
func wantCode(t *testing.T, err error, code codes.Code, reason string) *status.Status {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Fatalf("error = %v, want code %v", err, code)
	}
	if reason != "" {
		got := ""
		for _, d := range st.Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok {
				got = info.GetReason()
			}
		}
		if got != reason {
			t.Fatalf("reason = %q, want %q (error %v)", got, reason, err)
		}
	}
	return st
}

// wantCodeNoFatal returns what is wrong with err ("" when it has the code and reason).
func wantCodeNoFatal(t *testing.T, err error, code codes.Code, reason string) string {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		return fmt.Sprintf("error = %v, want code %v", err, code)
	}
	got := ""
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			got = info.GetReason()
		}
	}
	if got != reason {
		return fmt.Sprintf("reason = %q, want %q (error %v)", got, reason, err)
	}
	return ""
}

// violations returns the field -> description of an INVALID_ARGUMENT error.
func violations(t *testing.T, err error) map[string]string {
	t.Helper()
	st := wantCode(t, err, codes.InvalidArgument, "")
	out := map[string]string{}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				out[fv.GetField()] = fv.GetDescription()
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("INVALID_ARGUMENT without field violations: %v", err)
	}
	return out
}

var errStop = errors.New("stop")

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// nextChange returns the next response of a demand watch that carries a change, skipping
// progress notices.
func nextChange(s receivingv1.DemandFeedService_WatchDemandClient) (*receivingv1.WatchDemandResponse, error) {
	for {
		r, err := s.Recv()
		if err != nil || r.GetChange() != nil {
			return r, err
		}
	}
}

// nextDecision returns the next response of a decision watch that carries a candidate, skipping
// progress notices.
func nextDecision(s receivingv1.CandidateService_WatchDecisionsClient) (*receivingv1.WatchDecisionsResponse, error) {
	for {
		r, err := s.Recv()
		if err != nil || r.GetCandidate() != nil {
			return r, err
		}
	}
}
