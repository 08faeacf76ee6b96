package sending

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/creditcode"
	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/outbox"
	"github.com/eastwest/labourlink/services/platform/store"
	"github.com/eastwest/labourlink/services/receiving"
	"github.com/eastwest/labourlink/services/sending/roster"
)

// The test federation of the flow tests: Guizhou (520000) sends to Guangdong (440000), which
// pairs with Guizhou by default.
const (
	flowReceiving = "440000"
	flowCounty    = "440305" // 南山区, Shenzhen
	flowCounty2   = "440104" // 越秀区, Guangzhou
)

// recvNode is an in-process receiving service on a real listener and bbolt file.
type recvNode struct {
	t      testing.TB
	path   string
	addr   string // fixed after the first start, reused by restarts
	cfg    receiving.Config
	db     *store.DB
	srv    *grpcserver.Server
	conn   *grpc.ClientConn
	vac    receivingv1.VacancyServiceClient
	feed   receivingv1.DemandFeedServiceClient
	cand   receivingv1.CandidateServiceClient
	intake receivingv1.IntakeServiceClient
	runCtx context.CancelFunc
	ran    chan struct{}
}

func startReceiving(t testing.TB, adjust ...func(*receiving.Config)) *recvNode {
	t.Helper()
	r := &recvNode{t: t, path: filepath.Join(t.TempDir(), "receiving.db"), addr: "127.0.0.1:0"}
	r.cfg = receiving.Config{Region: flowReceiving}
	for _, a := range adjust {
		a(&r.cfg)
	}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *recvNode) start() {
	t := r.t
	t.Helper()
	lg := zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)).Named("receiving")
	db, err := store.Open(r.path, receiving.Schema, lg)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := receiving.New(db, lg, r.cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcserver.New(grpcserver.Config{ServiceName: "receiving", ShutdownTimeout: 2 * time.Second}, lg)
	svc.Register(srv.GRPC())
	var lis net.Listener
	for i := 0; ; i++ { // the port of a stopped server may take a moment to be free again
		lis, err = net.Listen("tcp", r.addr)
		if err == nil || i == 100 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	r.addr = lis.Addr().String()
	go func() { _ = srv.Serve(lis) }()
	srv.SetServing(svc.ServiceNames()...)
	runCtx, cancel := context.WithCancel(context.Background())
	r.ran = make(chan struct{})
	go func() {
		defer close(r.ran)
		_ = svc.Run(runCtx)
	}()
	conn, err := grpc.NewClient(r.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	r.db, r.srv, r.conn, r.runCtx = db, srv, conn, cancel
	r.vac = receivingv1.NewVacancyServiceClient(conn)
	r.feed = receivingv1.NewDemandFeedServiceClient(conn)
	r.cand = receivingv1.NewCandidateServiceClient(conn)
	r.intake = receivingv1.NewIntakeServiceClient(conn)
}

func (r *recvNode) stop() {
	if r.db == nil {
		return
	}
	r.runCtx()
	<-r.ran
	r.conn.Close()
	r.srv.Stop(context.Background())
	if err := r.db.Close(); err != nil {
		r.t.Errorf("close receiving store: %v", err)
	}
	r.db = nil
}

// sendNode is an in-process sending service (with Run) on a real listener and bbolt file.
type sendNode struct {
	t         testing.TB
	path      string
	cfg       Config
	db        *store.DB
	svc       *Service
	srv       *grpcserver.Server
	conn      *grpc.ClientConn
	roster    sendingv1.RosterServiceClient
	matching  sendingv1.MatchingServiceClient
	transport sendingv1.TransportServiceClient
	runCancel context.CancelFunc
	ran       chan struct{}
}

// fastConfig is a sending configuration with short backoffs for tests.
func fastConfig(receivingAddr string) Config {
	return Config{
		Region:     rosterRegion,
		Receiving:  map[string]string{flowReceiving: receivingAddr},
		MinBackoff: 20 * time.Millisecond,
		MaxBackoff: 300 * time.Millisecond,
		Outbox:     outbox.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, PollInterval: 50 * time.Millisecond},
	}
}

// startSending opens (or reopens) the data file at path ("" for a new one) and serves a sending
// service; with run it also runs its background work (followers, relays).
func startSending(t testing.TB, path string, cfg Config, run bool) *sendNode {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "sending.db")
	}
	n := &sendNode{t: t, path: path, cfg: cfg}
	n.start(run)
	t.Cleanup(n.stop)
	return n
}

func (n *sendNode) start(run bool) {
	t := n.t
	t.Helper()
	lg := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Named("sending")
	db, err := store.Open(n.path, Schema, lg)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(db, lg, n.cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcserver.New(grpcserver.Config{ServiceName: "sending", ShutdownTimeout: 2 * time.Second}, lg)
	svc.Register(srv.GRPC())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	srv.SetServing(svc.ServiceNames()...)
	ctx, cancel := context.WithCancel(context.Background())
	n.ran = make(chan struct{})
	if run {
		go func() {
			defer close(n.ran)
			_ = svc.Run(ctx)
		}()
	} else {
		close(n.ran)
	}
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	n.db, n.svc, n.srv, n.conn, n.runCancel = db, svc, srv, conn, cancel
	n.roster = sendingv1.NewRosterServiceClient(conn)
	n.matching = sendingv1.NewMatchingServiceClient(conn)
	n.transport = sendingv1.NewTransportServiceClient(conn)
}

func (n *sendNode) stop() {
	if n.db == nil {
		return
	}
	n.runCancel()
	<-n.ran
	n.conn.Close()
	n.srv.Stop(context.Background())
	// A match run started without Run works under the service's own context.
	n.svc.matching.Stop()
	if err := n.db.Close(); err != nil {
		n.t.Errorf("close sending store: %v", err)
	}
	n.db = nil
}

func (n *sendNode) restart(run bool) {
	n.stop()
	n.start(run)
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it reports true, failing the test with its last message after a
// generous deadline (a wait for background work, not a timing assertion).
func eventually(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s: %s", what, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func cdate(y, m, d int32) *commonv1.Date { return &commonv1.Date{Year: y, Month: m, Day: d} }

// testCreditCode returns a valid unified social credit code for organisation number i.
func testCreditCode(t testing.TB, i int) string {
	first := fmt.Sprintf("91440300MA%07d", i)
	c, err := creditcode.CheckChar(first)
	if err != nil {
		t.Fatal(err)
	}
	return first + string(c)
}

// testVacancy is a valid vacancy of employer i starting 2027-03-01.
func testVacancy(t testing.TB, i int, county, occupation string, headcount int32) *receivingv1.Vacancy {
	return &receivingv1.Vacancy{
		EmployerName:       fmt.Sprintf("深圳市测试电子%d有限公司", i),
		EmployerCreditCode: testCreditCode(t, i),
		WorkCounty:         county,
		Occupation:         occupation,
		Headcount:          headcount,
		MonthlyWageMinYuan: 4500,
		MonthlyWageMaxYuan: 6000,
		StartDate:          cdate(2027, 3, 1),
		ValidThrough:       cdate(2027, 6, 30),
		MinAge:             proto.Int32(18),
		MaxAge:             proto.Int32(50),
		HousingProvided:    true,
		MealsProvided:      true,
		Contact:            "0755-26000000",
	}
}

func (r *recvNode) createVacancy(v *receivingv1.Vacancy) *receivingv1.Vacancy {
	r.t.Helper()
	resp, err := r.vac.CreateVacancy(testCtx(r.t), &receivingv1.CreateVacancyRequest{Vacancy: v})
	if err != nil {
		r.t.Fatalf("CreateVacancy: %v", err)
	}
	return resp.GetVacancy()
}

// openDemand lists the receiving service's open vacancies by id.
func (r *recvNode) openDemand() map[string]*receivingv1.Vacancy {
	r.t.Helper()
	out := map[string]*receivingv1.Vacancy{}
	token := ""
	for {
		resp, err := r.feed.ListOpenDemand(testCtx(r.t), &receivingv1.ListOpenDemandRequest{SendingRegion: rosterRegion, PageSize: 1000, PageToken: token})
		if err != nil {
			r.t.Fatalf("ListOpenDemand: %v", err)
		}
		for _, v := range resp.GetVacancies() {
			out[v.GetVacancyId()] = v
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out
		}
	}
}

// head returns the demand feed's head revision.
func (r *recvNode) head() int64 {
	r.t.Helper()
	after := int64(0)
	for {
		resp, err := r.feed.ListDemandChanges(testCtx(r.t), &receivingv1.ListDemandChangesRequest{SendingRegion: rosterRegion, AfterRevision: after, PageSize: 1})
		if info := errorInfo(err); info != nil && info.GetReason() == "REVISION_COMPACTED" {
			after, _ = strconv.ParseInt(info.GetMetadata()["compacted_revision"], 10, 64)
			continue
		}
		if err != nil {
			r.t.Fatalf("ListDemandChanges: %v", err)
		}
		return resp.GetHeadRevision()
	}
}

// candidates lists the candidates of the sending province.
func (r *recvNode) candidates() []*receivingv1.Candidate {
	r.t.Helper()
	var out []*receivingv1.Candidate
	token := ""
	for {
		resp, err := r.cand.ListCandidates(testCtx(r.t), &receivingv1.ListCandidatesRequest{SendingRegion: rosterRegion, PageSize: 1000, PageToken: token})
		if err != nil {
			r.t.Fatalf("ListCandidates: %v", err)
		}
		out = append(out, resp.GetCandidates()...)
		if token = resp.GetNextPageToken(); token == "" {
			return out
		}
	}
}

// replica lists the sending service's replicated open demand by vacancy id.
func (n *sendNode) replica(ctx context.Context) (map[string]*receivingv1.Vacancy, error) {
	out := map[string]*receivingv1.Vacancy{}
	token := ""
	for {
		resp, err := n.matching.ListDemand(ctx, &sendingv1.ListDemandRequest{ReceivingRegion: flowReceiving, PageSize: 1000, PageToken: token})
		if err != nil {
			return nil, err
		}
		for _, dv := range resp.GetVacancies() {
			out[dv.GetVacancy().GetVacancyId()] = dv.GetVacancy()
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

// sameDemand compares two sets of vacancies and says how they differ.
func sameDemand(got, want map[string]*receivingv1.Vacancy) (bool, string) {
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			return false, fmt.Sprintf("vacancy %s missing from the replica (%d of %d there)", id, len(got), len(want))
		}
		if !proto.Equal(g, w) {
			return false, fmt.Sprintf("vacancy %s differs: replica revision %d, receiving revision %d", id, g.GetRevision(), w.GetRevision())
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			return false, fmt.Sprintf("vacancy %s in the replica is not open at the receiving service", id)
		}
	}
	return true, ""
}

// followPosition returns the sending service's position on the receiving province's feeds.
func (n *sendNode) followPosition(ctx context.Context) (*sendingv1.FollowPosition, error) {
	resp, err := n.matching.GetFollowStatus(ctx, &sendingv1.GetFollowStatusRequest{})
	if err != nil {
		return nil, err
	}
	for _, p := range resp.GetPositions() {
		if p.GetReceivingRegion() == flowReceiving {
			return p, nil
		}
	}
	return &sendingv1.FollowPosition{}, nil
}

// testWorkerRow is roster row i: a worker of county born in 1995 who can do occupation, is
// registered-poor when poor, available from 2026-12-01 and health-checked.
func testWorkerRow(i int, county, occupation string, poor bool) *sendingv1.WorkerRow {
	birth := time.Date(1995, 5, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i/1000)
	flag := "否"
	if poor {
		flag = "是"
	}
	return &sendingv1.WorkerRow{
		RowNumber:         int64(i + 2),
		IdNumber:          makeIDNumber(county, birth, i),
		FullName:          personName(i),
		Phone:             fmt.Sprintf("139%08d", i),
		HomeCounty:        county,
		RegisteredPoor:    flag,
		Occupations:       occupation,
		AvailableFrom:     "2026-12-01",
		HealthCheckPassed: "是",
		HealthCheckDate:   "2026-10-01",
	}
}

// importWorkers imports rows and returns the workers, by row index.
func (n *sendNode) importWorkers(rows []*sendingv1.WorkerRow) []*sendingv1.Worker {
	t := n.t
	t.Helper()
	resp, err := importRows(testCtx(t), n.roster, fmt.Sprintf("import-%d", time.Now().UnixNano()), rows, 500)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if resp.GetSummary().GetRejected() != 0 {
		t.Fatalf("import rejected rows: %v", resp.GetSummary().GetRejections())
	}
	byID := map[string]*sendingv1.Worker{}
	err = n.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(roster.BucketWorkers).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			w, err := roster.Read(tx, string(k))
			if err != nil {
				return err
			}
			byID[w.GetIdNumber()] = w
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*sendingv1.Worker, len(rows))
	for i, r := range rows {
		out[i] = byID[r.GetIdNumber()]
	}
	return out
}

// worker reads a worker's stored record.
func (n *sendNode) worker(id string) *sendingv1.Worker {
	n.t.Helper()
	var w *sendingv1.Worker
	err := n.db.View(func(tx *bbolt.Tx) error {
		var err error
		w, err = roster.Read(tx, id)
		return err
	})
	if err != nil {
		n.t.Fatal(err)
	}
	return w
}

// proposals lists every proposal.
func (n *sendNode) proposals(ctx context.Context, filter *sendingv1.ListProposalsRequest) ([]*sendingv1.Proposal, error) {
	var out []*sendingv1.Proposal
	req := proto.Clone(filter).(*sendingv1.ListProposalsRequest)
	req.PageSize = 7 // small pages exercise the paging
	for {
		resp, err := n.matching.ListProposals(ctx, req)
		if err != nil {
			return nil, err
		}
		out = append(out, resp.GetProposals()...)
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			return out, nil
		}
	}
}

// runMatch starts a match run and waits for it to end.
func (n *sendNode) runMatch(dryRun bool) *sendingv1.MatchRun {
	t := n.t
	t.Helper()
	ctx := testCtx(t)
	resp, err := n.matching.StartMatchRun(ctx, &sendingv1.StartMatchRunRequest{DryRun: dryRun, RequestId: fmt.Sprintf("run-%d", time.Now().UnixNano())})
	if err != nil {
		t.Fatalf("StartMatchRun: %v", err)
	}
	var run *sendingv1.MatchRun
	eventually(t, "the match run to end", func() (bool, string) {
		got, err := n.matching.GetMatchRun(ctx, &sendingv1.GetMatchRunRequest{Name: resp.GetMatchRun().GetName()})
		if err != nil {
			return false, err.Error()
		}
		run = got.GetMatchRun()
		return run.GetState() != sendingv1.MatchRunState_MATCH_RUN_STATE_RUNNING, run.GetStage()
	})
	if run.GetState() != sendingv1.MatchRunState_MATCH_RUN_STATE_SUCCEEDED {
		t.Fatalf("match run %s ended %s: %s", run.GetName(), run.GetState(), run.GetError())
	}
	return run
}

// outboxPayloads decodes the payloads waiting in the outbox for destination, in order.
func outboxPayloads(t *testing.T, db *store.DB, destination string) []*anypb.Any {
	t.Helper()
	var out []*anypb.Any
	err := db.View(func(tx *bbolt.Tx) error {
		top := tx.Bucket(store.BucketOutbox)
		if top == nil || top.Bucket([]byte(destination)) == nil {
			return nil
		}
		return top.Bucket([]byte(destination)).ForEach(func(_, v []byte) error {
			// The stored envelope: field 2 is the payload (google.protobuf.Any).
			for len(v) > 0 {
				num, typ, n := protowire.ConsumeTag(v)
				if n < 0 {
					return protowire.ParseError(n)
				}
				v = v[n:]
				if num == 2 && typ == protowire.BytesType {
					raw, m := protowire.ConsumeBytes(v)
					if m < 0 {
						return protowire.ParseError(m)
					}
					a := &anypb.Any{}
					if err := proto.Unmarshal(raw, a); err != nil {
						return err
					}
					out = append(out, a)
					v = v[m:]
					continue
				}
				m := protowire.ConsumeFieldValue(num, typ, v)
				if m < 0 {
					return protowire.ParseError(m)
				}
				v = v[m:]
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// statuses returns the status of each worker.
func (n *sendNode) statuses(ws []*sendingv1.Worker) []sendingv1.WorkerStatus {
	out := make([]sendingv1.WorkerStatus, len(ws))
	for i, w := range ws {
		out[i] = n.worker(w.GetWorkerId()).GetStatus()
	}
	return out
}

func countStatus(sts []sendingv1.WorkerStatus, want sendingv1.WorkerStatus) int {
	return len(slices.DeleteFunc(slices.Clone(sts), func(s sendingv1.WorkerStatus) bool { return s != want }))
}

// personName returns a distinct Chinese name for each i (names with digits are refused by the
// receiving service).
func personName(i int) string {
	surnames := []rune("王李张刘陈杨黄赵吴周")
	given := []rune("一二三四五六七八九十百千万春夏秋冬梅兰竹")
	name := []rune{surnames[i%len(surnames)]}
	for i /= len(surnames); ; i /= len(given) {
		name = append(name, given[i%len(given)])
		if i < len(given) {
			break
		}
	}
	return string(name)
}
