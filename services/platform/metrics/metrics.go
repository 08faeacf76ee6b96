// Package metrics is every Prometheus metric a labourlink process exports, registered once
// here, on a registry of the process's own (not the global default registry, so that tests run
// several services in one process): the RPC metrics of the gRPC server and of the clients the
// services use to call each other (go-grpc-middleware's Prometheus provider), counters of events
// (deliveries that failed, import rows, ledger events ingested), and gauges read at scrape time
// from the state the services keep (outbox depth and age, quarantine, follower lag, open
// discrepancies, the bbolt file). The subsystems hand this package what they know (a counter's
// event, a function that reads their state); the names, labels and help texts are all here,
// and docs/operations.md ("Metrics") lists them for operators.
//
// Every method of a nil *Registry does nothing, so a subsystem built without metrics (a unit
// test) needs no special case. Labels never carry personal data or worker ids: their values are
// province codes, destinations (a province or the coordination service), enum names and gRPC
// method names, a set bounded by the federation's size.
//
//	reg := metrics.New("sending", "520000")
//	srv := grpcserver.New(grpcserver.Config{Metrics: reg}, lg)
//	http.Handle("/metrics", reg.Handler())
package metrics

import (
	"net/http"
	"sync"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	"github.com/eastwest/labourlink/services/platform/version"
)

// Namespace prefixes every domain metric's name.
const Namespace = "labourlink"

// The import kinds (label "import") and row results (label "result") of ImportRows.
const (
	ImportRoster    = "roster"
	ImportVacancies = "vacancies"
	ResultCommitted = "committed"
	ResultRejected  = "rejected"
)

// rpcBuckets are the latency buckets of the RPC histograms, in seconds: from a cached read
// (a millisecond) to an import stream of a million rows (minutes).
var rpcBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}

// Registry holds the metrics of one process.
type Registry struct {
	reg    *prometheus.Registry
	server *grpcprom.ServerMetrics
	client *grpcprom.ClientMetrics

	deliveryFailures *prometheus.CounterVec
	importRows       *prometheus.CounterVec
	ledgerEvents     *prometheus.CounterVec

	mu sync.Mutex // guards the registration of the observers below
}

// New returns the registry of a process of service kind ("sending", "receiving",
// "coordination") for region ("" for the coordination service): the Go runtime and process
// collectors, labourlink_build_info, the RPC metrics and the event counters. Gauges of state
// are added by the Observe methods.
func New(service, region string) *Registry {
	r := &Registry{
		reg: prometheus.NewRegistry(),
		server: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets(rpcBuckets))),
		client: grpcprom.NewClientMetrics(grpcprom.WithClientHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets(rpcBuckets))),
		deliveryFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "outbox", Name: "delivery_failures_total",
			Help: "Failed deliveries of outbox entries to a destination (the entry is retried with backoff; a refusal for good is not a failure, it goes to the quarantine).",
		}, []string{"destination"}),
		importRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "import_rows_total",
			Help: "Rows of bulk imports committed to the data file, by import (roster, vacancies) and result (committed: stored; rejected: refused with its reasons). A row sent again on a resumed import is not counted again.",
		}, []string{"import", "result"}),
		ledgerEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "ledger", Name: "events_ingested_total",
			Help: "Ledger events recorded by the coordination service, by event kind and reporter role (duplicates and refused events are not counted).",
		}, []string{"kind", "reporter_role"}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help:        "Always 1; the labels name the running service, its region and its build.",
		ConstLabels: prometheus.Labels{"service": service, "region": region, "version": version.String()},
	})
	build.Set(1)
	r.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build, r.server, r.client, r.deliveryFailures, r.importRows, r.ledgerEvents,
	)
	return r
}

// Gatherer returns what the registry exports, for tests and handlers.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// Handler serves the registry in the Prometheus text format (/metrics).
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{Registry: r.reg, MaxRequestsInFlight: 4, Timeout: 30 * time.Second})
}

// ServerInterceptors return the interceptors that count the gRPC server's calls
// (grpc_server_started_total, grpc_server_handled_total by method and code,
// grpc_server_handling_seconds, messages of streams); nil for a nil registry.
func (r *Registry) ServerInterceptors() (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	if r == nil {
		return nil, nil
	}
	return r.server.UnaryServerInterceptor(), r.server.StreamServerInterceptor()
}

// InitializeServer exports every method registered on gs with zero counts, so that a rate over
// a method not called yet is 0 rather than absent. Call it after registering the services.
func (r *Registry) InitializeServer(gs *grpc.Server) {
	if r != nil {
		r.server.InitializeMetrics(gs)
	}
}

// ClientDialOptions are the dial options that count the calls of a client connection to
// another service (grpc_client_*); none for a nil registry.
func (r *Registry) ClientDialOptions() []grpc.DialOption {
	if r == nil {
		return nil
	}
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(r.client.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(r.client.StreamClientInterceptor()),
	}
}

// InitializeDestination exports destination's delivery failures at 0 (a relay calls it when it
// starts), so that an alert on their rate sees the first failure.
func (r *Registry) InitializeDestination(destination string) {
	if r != nil {
		r.deliveryFailures.WithLabelValues(destination)
	}
}

// DeliveryFailed counts a failed delivery to destination.
func (r *Registry) DeliveryFailed(destination string) {
	if r != nil {
		r.deliveryFailures.WithLabelValues(destination).Inc()
	}
}

// InitializeImport exports the row counters of import kind at 0.
func (r *Registry) InitializeImport(kind string) {
	if r != nil {
		r.importRows.WithLabelValues(kind, ResultCommitted)
		r.importRows.WithLabelValues(kind, ResultRejected)
	}
}

// ImportRows counts the rows of an import of kind that one transaction committed: stored
// ones and rejected ones. Call it after the commit.
func (r *Registry) ImportRows(kind string, committed, rejected int) {
	if r == nil {
		return
	}
	if committed > 0 {
		r.importRows.WithLabelValues(kind, ResultCommitted).Add(float64(committed))
	}
	if rejected > 0 {
		r.importRows.WithLabelValues(kind, ResultRejected).Add(float64(rejected))
	}
}

// InitializeLedgerEvent exports the counter of one event kind and reporter role at 0.
func (r *Registry) InitializeLedgerEvent(kind, reporterRole string) {
	if r != nil {
		r.ledgerEvents.WithLabelValues(kind, reporterRole)
	}
}

// LedgerEventsIngested counts n recorded ledger events of kind from a reporter of role. Call it
// after the commit.
func (r *Registry) LedgerEventsIngested(kind, reporterRole string, n int) {
	if r != nil && n > 0 {
		r.ledgerEvents.WithLabelValues(kind, reporterRole).Add(float64(n))
	}
}
