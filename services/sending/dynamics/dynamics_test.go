package dynamics_test

import (
	"context"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"pgregory.net/rapid"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/outatwork"
	"github.com/eastwest/labourlink/services/platform/outatwork/outatworktest"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/sending"
	"github.com/eastwest/labourlink/services/sending/returnees"
	"github.com/eastwest/labourlink/services/sending/roster"
)

// tb is what the helpers need of a *testing.T or a *rapid.T.
type tb interface {
	Helper()
	Cleanup(func())
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// clock is the service's clock, set by the test.
type clock struct{ nanos atomic.Int64 }

func (c *clock) Now() time.Time  { return time.Unix(0, c.nanos.Load()) }
func (c *clock) Set(t time.Time) { c.nanos.Store(t.UnixNano()) }

// node is a sending service for 520000 on a real file, served in process.
type node struct {
	db        *store.DB
	clock     *clock
	dynamics  sendingv1.DynamicsServiceClient
	returnees sendingv1.ReturneeServiceClient
}

func startNode(t tb, dir string) *node {
	t.Helper()
	lg := zap.NewNop()
	db, err := store.Open(filepath.Join(dir, "sending.db"), sending.Schema, lg)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{}
	c.Set(outatworktest.Now)
	s, err := sending.New(db, lg, sending.Config{Region: "520000", Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcserver.New(grpcserver.Config{ServiceName: "sending"}, lg)
	s.Register(srv.GRPC())
	lis := bufconn.Listen(1 << 20)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	cc, err := grpc.NewClient("passthrough:///sending",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cc.Close()
		srv.Stop(context.Background())
		<-done
		db.Close()
	})
	return &node{db: db, clock: c, dynamics: sendingv1.NewDynamicsServiceClient(cc), returnees: sendingv1.NewReturneeServiceClient(cc)}
}

func ctxT(t tb) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// putWorkers writes the generated workers of 520000 into the roster as the roster keeps them.
func (n *node) putWorkers(t tb, ws []outatworktest.Worker) {
	t.Helper()
	err := n.db.Update(func(tx *bbolt.Tx) error {
		for _, w := range ws {
			if w.Sending != "520000" {
				continue
			}
			rw := &sendingv1.Worker{WorkerId: w.ID, HomeCounty: w.HomeCounty, RegisteredPoor: w.Poor, Status: sendingv1.WorkerStatus_WORKER_STATUS_DEPARTED}
			for _, tr := range w.Trips {
				trip := &sendingv1.Trip{BatchId: tr.Batch, ReceivingRegion: tr.Dest, Occupation: tr.Occupation, DepartureTime: timestamppb.New(tr.Depart), NoShow: tr.NoShow}
				if tr.Returned != nil {
					trip.ReturnTime = timestamppb.New(*tr.Returned)
				}
				if tr.LeftJob != nil {
					trip.LeftJobDate = civil.Today(*tr.LeftJob)
				}
				rw.Trips = append(rw.Trips, trip)
			}
			if err := store.PutProto(tx.Bucket(roster.BucketWorkers), []byte(w.ID), rw); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The province's figures equal a count day by day over its workers' journeys, for the whole
// province and for one county.
func TestDynamicsCountDistinctWorkersOutAtWork(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(rt *rapid.T) {
		n := startNode(rt, t.TempDir())
		ws := outatworktest.Journeys(rt, 10)
		n.putWorkers(rt, ws)
		for _, d := range rapid.SliceOfN(rapid.IntRange(0, 1065), 1, 3).Draw(rt, "asOf") {
			asOf := civil.Today(outatworktest.Base.AddDate(0, 0, d))
			for _, county := range []string{"", "520102"} {
				resp, err := n.dynamics.GetEmploymentDynamics(ctxT(rt), &sendingv1.GetEmploymentDynamicsRequest{AsOf: asOf, HomeCounty: county})
				if err != nil {
					rt.Fatalf("GetEmploymentDynamics(%s, %q): %v", civil.Format(asOf), county, err)
				}
				want := outatworktest.Expected(ws, func(w outatworktest.Worker) bool {
					return w.Sending == "520000" && (county == "" || w.HomeCounty == county)
				}, asOf, outatwork.SameDayLastYear(asOf), int(asOf.GetYear())-1)
				if civil.Compare(resp.GetSameDayLastYear(), outatwork.SameDayLastYear(asOf)) != 0 || resp.GetLastYear() != asOf.GetYear()-1 {
					rt.Fatalf("as of %s: same day %v, last year %d", civil.Format(asOf), resp.GetSameDayLastYear(), resp.GetLastYear())
				}
				compareRows(rt, civil.Format(asOf)+" county "+county, want, "total", []*commonv1.DynamicsRow{resp.GetTotal()})
				compareRows(rt, civil.Format(asOf)+" county "+county, want, "county", resp.GetByHomeCounty())
				compareRows(rt, civil.Format(asOf)+" county "+county, want, "destination", resp.GetByDestination())
				compareRows(rt, civil.Format(asOf)+" county "+county, want, "occupation", resp.GetByOccupation())
			}
		}
	})
}

// compareRows checks the rows of dimension dim against want (a total row always, other
// dimensions only with a count).
func compareRows(t tb, what string, want outatworktest.Figures, dim string, rows []*commonv1.DynamicsRow) {
	t.Helper()
	n := 0
	for _, c := range want[dim] {
		if *c != (outatworktest.Counts{}) {
			n++
		}
	}
	if dim != "total" && len(rows) != n {
		t.Fatalf("%s: %d rows by %s, want %d: %v", what, len(rows), dim, n, rows)
	}
	for _, r := range rows {
		c := want.Get(dim, r.GetKey())
		got := outatworktest.Counts{AsOf: r.GetOutAtWork(), SameDay: r.GetSameDayLastYear(), LastYear: r.GetLastYearTotal()}
		if got != c {
			t.Fatalf("%s, %s %q: got %+v, want %+v", what, dim, r.GetKey(), got, c)
		}
		if a := r.GetAgainstSameDayLastYear(); a.GetNumerator() != c.AsOf || a.GetDenominator() != c.SameDay {
			t.Fatalf("%s, %s %q: against the same day %v, want %d/%d", what, dim, r.GetKey(), a, c.AsOf, c.SameDay)
		}
		if a := r.GetAgainstLastYearTotal(); a.GetNumerator() != c.AsOf || a.GetDenominator() != c.LastYear {
			t.Fatalf("%s, %s %q: against last year %v, want %d/%d", what, dim, r.GetKey(), a, c.AsOf, c.LastYear)
		}
	}
}

// The recovery rate as of a day reads the employers' resumption changes: an employer that
// resumed later, or stopped later, is counted as it was on the day; one registered later is not
// counted; one stored before resumption changes were kept counts with its current state. The
// workers placed locally on the day are counted.
func TestDynamicsRecoveryRateAsOfADay(t *testing.T) {
	t.Parallel()
	n := startNode(t, t.TempDir())
	day := func(d int) time.Time { return time.Date(2026, 3, d, 10, 0, 0, 0, civil.Zone) }
	create := func(name string, kind sendingv1.LocalEmployerKind, resumed bool) string {
		resp, err := n.returnees.CreateLocalEmployer(ctxT(t), &sendingv1.CreateLocalEmployerRequest{LocalEmployer: &sendingv1.LocalEmployer{
			DisplayName: name, Kind: kind, County: "520424", Capacity: 5, Resumed: resumed,
		}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetLocalEmployer().GetName()
	}
	resume := func(name string, resumed bool) {
		_, err := n.returnees.UpdateLocalEmployer(ctxT(t), &sendingv1.UpdateLocalEmployerRequest{
			LocalEmployer: &sendingv1.LocalEmployer{Name: name, Resumed: resumed}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"resumed"}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	workshop, post := sendingv1.LocalEmployerKind_LOCAL_EMPLOYER_KIND_POVERTY_ALLEVIATION_WORKSHOP, sendingv1.LocalEmployerKind_LOCAL_EMPLOYER_KIND_PUBLIC_WELFARE_POST
	// An employer of an older version: resumed, no changes kept, registered on 1 March.
	err := n.db.Update(func(tx *bbolt.Tx) error {
		return store.PutProto(tx.Bucket(returnees.BucketLocalEmployers), []byte("520000-L00000099"), &sendingv1.LocalEmployer{
			LocalEmployerId: "520000-L00000099", DisplayName: "老车间", Kind: workshop, County: "520424", Capacity: 3, Resumed: true,
			CreateTime: timestamppb.New(day(1)), UpdateTime: timestamppb.New(day(1)),
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	n.clock.Set(day(2))
	a := create("花江镇扶贫车间", workshop, false)
	b := create("关岭县扶贫车间", workshop, true)
	create("护林员", post, true)
	n.clock.Set(day(5))
	resume(a, true)
	n.clock.Set(day(8))
	resume(b, false)
	resume(b, false) // no change: no entry
	// A worker placed locally from 3 to 6 March, one from 4 March on, one not registered-poor.
	err = n.db.Update(func(tx *bbolt.Tx) error {
		for id, p := range map[string]struct {
			poor     bool
			from, to *commonv1.Date
		}{
			"520000-W1": {true, civil.Today(day(3)), civil.Today(day(6))},
			"520000-W2": {true, civil.Today(day(4)), nil},
			"520000-W3": {false, civil.Today(day(3)), nil},
		} {
			w := &sendingv1.Worker{WorkerId: id, HomeCounty: "520424", RegisteredPoor: p.poor, LocalPlacements: []*sendingv1.LocalPlacement{{LocalEmployer: a, Kind: workshop, StartDate: p.from, EndDate: p.to}}}
			if err := store.PutProto(tx.Bucket(roster.BucketWorkers), []byte(id), w); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	n.clock.Set(day(20))
	type rate struct{ n, d int64 }
	for _, tt := range []struct {
		day              int
		workshops, posts rate
		total            rate
		placed           int64
	}{
		{1, rate{1, 1}, rate{0, 0}, rate{1, 1}, 0},
		{2, rate{2, 3}, rate{1, 1}, rate{3, 4}, 0},
		{3, rate{2, 3}, rate{1, 1}, rate{3, 4}, 1},
		{5, rate{3, 3}, rate{1, 1}, rate{4, 4}, 2},
		{6, rate{3, 3}, rate{1, 1}, rate{4, 4}, 1},
		{8, rate{2, 3}, rate{1, 1}, rate{3, 4}, 1},
		{20, rate{2, 3}, rate{1, 1}, rate{3, 4}, 1},
	} {
		resp, err := n.dynamics.GetEmploymentDynamics(ctxT(t), &sendingv1.GetEmploymentDynamicsRequest{AsOf: civil.Today(day(tt.day))})
		if err != nil {
			t.Fatal(err)
		}
		got := map[sendingv1.LocalEmployerKind]rate{}
		for _, r := range resp.GetRecoveryByKind() {
			got[r.GetKind()] = rate{r.GetRecoveryRate().GetNumerator(), r.GetRecoveryRate().GetDenominator()}
		}
		tot := resp.GetRecoveryTotal().GetRecoveryRate()
		if got[workshop] != tt.workshops || got[post] != tt.posts || (rate{tot.GetNumerator(), tot.GetDenominator()}) != tt.total || resp.GetPlacedLocally() != tt.placed {
			t.Errorf("as of 2026-03-%02d: workshops %v, posts %v, total %v, placed %d; want %v %v %v %d",
				tt.day, got[workshop], got[post], tot, resp.GetPlacedLocally(), tt.workshops, tt.posts, tt.total, tt.placed)
		}
	}
	resp, err := n.dynamics.GetEmploymentDynamics(ctxT(t), &sendingv1.GetEmploymentDynamicsRequest{AsOf: civil.Today(day(8))})
	if err != nil {
		t.Fatal(err)
	}
	if p := resp.GetRecoveryTotal().GetRecoveryRate().GetPercentage(); p != 75 {
		t.Errorf("recovery rate on 8 March = %v%%, want 75%%", p)
	}
}

// Bad requests are refused with the field.
func TestDynamicsValidation(t *testing.T) {
	t.Parallel()
	n := startNode(t, t.TempDir())
	today := civil.Today(n.clock.Now())
	for _, tt := range []struct {
		name  string
		req   *sendingv1.GetEmploymentDynamicsRequest
		field string
	}{
		{"no date", &sendingv1.GetEmploymentDynamicsRequest{}, "as_of"},
		{"not a date", &sendingv1.GetEmploymentDynamicsRequest{AsOf: &commonv1.Date{Year: 2026, Month: 4, Day: 31}}, "as_of"},
		{"tomorrow", &sendingv1.GetEmploymentDynamicsRequest{AsOf: civil.AddDays(today, 1)}, "as_of"},
		{"before 2000", &sendingv1.GetEmploymentDynamicsRequest{AsOf: &commonv1.Date{Year: 1999, Month: 1, Day: 1}}, "as_of"},
		{"a county of another province", &sendingv1.GetEmploymentDynamicsRequest{AsOf: today, HomeCounty: "440103"}, "home_county"},
		{"a province, not a county", &sendingv1.GetEmploymentDynamicsRequest{AsOf: today, HomeCounty: "520000"}, "home_county"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := n.dynamics.GetEmploymentDynamics(ctxT(t), tt.req)
			st, _ := status.FromError(err)
			if st.Code() != codes.InvalidArgument {
				t.Fatalf("error %v, want INVALID_ARGUMENT", err)
			}
			found := false
			for _, d := range st.Details() {
				if br, ok := d.(*errdetails.BadRequest); ok {
					for _, v := range br.GetFieldViolations() {
						found = found || v.GetField() == tt.field
					}
				}
			}
			if !found {
				t.Fatalf("error %v does not name %s", err, tt.field)
			}
		})
	}
}
