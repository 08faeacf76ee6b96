package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/bbolt"
)

// The gauges of state are read at scrape time, through a function of the subsystem that keeps
// the state (a read transaction, or what the subsystem holds in memory): they cannot drift from
// what the service has, and a scrape costs what the function costs (each says how cheap it is).

// observer is a collector whose metrics are made at each scrape by collect.
type observer struct {
	descs   []*prometheus.Desc
	collect func(ch chan<- prometheus.Metric)
}

func (o observer) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range o.descs {
		ch <- d
	}
}

func (o observer) Collect(ch chan<- prometheus.Metric) { o.collect(ch) }

func (r *Registry) observe(collect func(ch chan<- prometheus.Metric), descs ...*prometheus.Desc) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reg.MustRegister(observer{descs: descs, collect: collect})
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

// failed exports d as 1 when err is set, else 0.
func failed(ch chan<- prometheus.Metric, d *prometheus.Desc, err error) {
	v := 0.0
	if err != nil {
		v = 1
	}
	gauge(ch, d, v)
}

func name(subsystem, n string) string { return prometheus.BuildFQName(Namespace, subsystem, n) }

// OutboxDestination is what the outbox holds for one destination.
type OutboxDestination struct {
	// Destination is the queue's name (a receiving province's code, or the coordination
	// service's ledger).
	Destination string
	// Entries waiting for delivery, and the age of the oldest of them (0 when none waits).
	Entries   int
	OldestAge time.Duration
	// Quarantined entries: refused by the peer for good, waiting for an operator.
	Quarantined int
}

var (
	outboxEntries     = prometheus.NewDesc(name("outbox", "entries"), "Entries waiting in the outbox for delivery to a destination.", []string{"destination"}, nil)
	outboxOldestAge   = prometheus.NewDesc(name("outbox", "oldest_entry_age_seconds"), "Age of the oldest entry waiting for a destination (0 when none waits): how late the peer is behind this service's facts.", []string{"destination"}, nil)
	outboxQuarantined = prometheus.NewDesc(name("outbox", "quarantined_entries"), "Entries the destination refused for good, held in the quarantine until an operator retries or discards them (labourlink outbox).", []string{"destination"}, nil)
	outboxReadErrors  = prometheus.NewDesc(name("outbox", "read_errors"), "1 when the last scrape could not read the outbox (see the service's log), else 0.", nil, nil)
)

// ObserveOutbox exports the outbox read by read at each scrape: labourlink_outbox_entries,
// labourlink_outbox_oldest_entry_age_seconds and labourlink_outbox_quarantined_entries per
// destination.
func (r *Registry) ObserveOutbox(read func() ([]OutboxDestination, error)) {
	r.observe(func(ch chan<- prometheus.Metric) {
		dests, err := read()
		failed(ch, outboxReadErrors, err)
		for _, d := range dests {
			gauge(ch, outboxEntries, float64(d.Entries), d.Destination)
			gauge(ch, outboxOldestAge, d.OldestAge.Seconds(), d.Destination)
			gauge(ch, outboxQuarantined, float64(d.Quarantined), d.Destination)
		}
	}, outboxEntries, outboxOldestAge, outboxQuarantined, outboxReadErrors)
}

// FollowerLag is how far a follower of one peer's feed is behind the feed's head.
type FollowerLag struct {
	// Peer is the receiving province followed; Feed is "demand", "decision" or "employment".
	Peer, Feed string
	// RevisionsBehind is the feed's head revision less the last revision applied.
	RevisionsBehind int64
	// CaughtUp is whether the follower has applied everything the feed had when it last said.
	CaughtUp bool
}

var (
	followerBehind   = prometheus.NewDesc(name("feed_follower", "revisions_behind"), "Revisions of a peer's feed not yet applied by this service's follower (head revision less applied revision), as of the feed's last message.", []string{"peer", "feed"}, nil)
	followerCaughtUp = prometheus.NewDesc(name("feed_follower", "caught_up"), "1 when the follower of a peer's feed has applied everything the feed had, else 0.", []string{"peer", "feed"}, nil)
)

// ObserveFollowers exports the followers' lag read by read at each scrape (the followers'
// memory, no transaction): labourlink_feed_follower_revisions_behind and
// labourlink_feed_follower_caught_up per peer and feed. A feed whose watch has not answered
// since the process started is absent.
func (r *Registry) ObserveFollowers(read func() []FollowerLag) {
	r.observe(func(ch chan<- prometheus.Metric) {
		for _, l := range read() {
			gauge(ch, followerBehind, float64(l.RevisionsBehind), l.Peer, l.Feed)
			up := 0.0
			if l.CaughtUp {
				up = 1
			}
			gauge(ch, followerCaughtUp, up, l.Peer, l.Feed)
		}
	}, followerBehind, followerCaughtUp)
}

var discrepanciesOpen = prometheus.NewDesc(name("reconciliation", "open_discrepancies"), "Discrepancies open now in the coordination service's reconciliation, by kind (unaccounted, unexpected, unverified, no_show).", []string{"kind"}, nil)

// ObserveDiscrepancies exports labourlink_reconciliation_open_discrepancies per kind, read by
// read at each scrape. Every kind read is exported, 0 included.
func (r *Registry) ObserveDiscrepancies(read func() map[string]int64) {
	r.observe(func(ch chan<- prometheus.Metric) {
		for kind, n := range read() {
			gauge(ch, discrepanciesOpen, float64(n), kind)
		}
	}, discrepanciesOpen)
}

// StoreStats is what a scrape reads of the data file.
type StoreStats struct {
	// FileBytes is the size of the bbolt file.
	FileBytes int64
	// Stats are bbolt's statistics of the open file (DB.Stats).
	Stats bbolt.Stats
}

var (
	storeFileBytes      = prometheus.NewDesc(name("store", "file_size_bytes"), "Size of the service's bbolt data file.", nil, nil)
	storeFreePages      = prometheus.NewDesc(name("store", "free_pages"), "Free pages of the data file (space bbolt reuses before the file grows).", nil, nil)
	storePendingPages   = prometheus.NewDesc(name("store", "pending_pages"), "Pages freed by transactions that readers still hold open.", nil, nil)
	storeFreelistBytes  = prometheus.NewDesc(name("store", "freelist_inuse_bytes"), "Bytes the freelist takes in the data file.", nil, nil)
	storeReadTx         = prometheus.NewDesc(name("store", "read_transactions_total"), "Read transactions started on the data file since it was opened.", nil, nil)
	storeOpenReadTx     = prometheus.NewDesc(name("store", "open_read_transactions"), "Read transactions open now (a long-lived one keeps freed pages from reuse).", nil, nil)
	storePagesWritten   = prometheus.NewDesc(name("store", "pages_written_total"), "Pages written to the data file by committed transactions.", nil, nil)
	storeWriteSeconds   = prometheus.NewDesc(name("store", "write_seconds_total"), "Time spent writing committed transactions' pages to disk (fdatasync included).", nil, nil)
	storeSpillSeconds   = prometheus.NewDesc(name("store", "spill_seconds_total"), "Time spent spilling (serialising) nodes of committed transactions.", nil, nil)
	storeRebalanceTotal = prometheus.NewDesc(name("store", "rebalances_total"), "Node rebalances of committed transactions.", nil, nil)
	storePagesAllocated = prometheus.NewDesc(name("store", "page_alloc_bytes_total"), "Bytes of pages allocated by transactions.", nil, nil)
	storeReadErrors     = prometheus.NewDesc(name("store", "stat_errors"), "1 when the last scrape could not read the data file's size, else 0.", nil, nil)
)

// ObserveStore exports the data file's size and bbolt's transaction statistics, read by read at
// each scrape (a stat of the file and bbolt's counters: no transaction).
func (r *Registry) ObserveStore(read func() (StoreStats, error)) {
	r.observe(func(ch chan<- prometheus.Metric) {
		s, err := read()
		failed(ch, storeReadErrors, err)
		gauge(ch, storeFileBytes, float64(s.FileBytes))
		gauge(ch, storeFreePages, float64(s.Stats.FreePageN))
		gauge(ch, storePendingPages, float64(s.Stats.PendingPageN))
		gauge(ch, storeFreelistBytes, float64(s.Stats.FreelistInuse))
		counter(ch, storeReadTx, float64(s.Stats.TxN))
		gauge(ch, storeOpenReadTx, float64(s.Stats.OpenTxN))
		tx := s.Stats.TxStats
		counter(ch, storePagesWritten, float64(tx.GetWrite()))
		counter(ch, storeWriteSeconds, tx.GetWriteTime().Seconds())
		counter(ch, storeSpillSeconds, tx.GetSpillTime().Seconds())
		counter(ch, storeRebalanceTotal, float64(tx.GetRebalance()))
		counter(ch, storePagesAllocated, float64(tx.GetPageAlloc()))
	}, storeFileBytes, storeFreePages, storePendingPages, storeFreelistBytes, storeReadTx, storeOpenReadTx,
		storePagesWritten, storeWriteSeconds, storeSpillSeconds, storeRebalanceTotal, storePagesAllocated, storeReadErrors)
}

// LedgerWatch is what a regional service keeps of the verifiable ledger
// (services/coordination/ledgerclient, watch.go).
type LedgerWatch struct {
	// Acknowledged is the number of acknowledged events kept.
	Acknowledged int
	// Failures is the number of acknowledged events the ledger no longer holds as acknowledged.
	Failures int
	// CheckpointProblem is true while the log as a whole fails its check (signature,
	// consistency with the kept checkpoint).
	CheckpointProblem bool
}

var (
	ledgerAcknowledged = prometheus.NewDesc(name("ledger", "acknowledged_events"), "Events the coordination service's ledger acknowledged that this regional service keeps (leaf index and hash) to check later.", nil, nil)
	ledgerFailures     = prometheus.NewDesc(name("ledger_verify", "failures"), "Acknowledged events the coordination service's ledger no longer holds as acknowledged (changed or missing), as found by this regional service's checks.", nil, nil)
	ledgerCheckpointOK = prometheus.NewDesc(name("ledger_verify", "checkpoint_ok"), "1 while the ledger's current checkpoint of this province is signed by the pinned key and extends the one kept, else 0.", nil, nil)
)

// ObserveLedgerWatch exports labourlink_ledger_acknowledged_events,
// labourlink_ledger_verify_failures and labourlink_ledger_verify_checkpoint_ok, read by read at
// each scrape.
func (r *Registry) ObserveLedgerWatch(read func() (LedgerWatch, error)) {
	r.observe(func(ch chan<- prometheus.Metric) {
		w, err := read()
		if err != nil {
			failed(ch, ledgerFailures, err)
			return
		}
		gauge(ch, ledgerAcknowledged, float64(w.Acknowledged))
		gauge(ch, ledgerFailures, float64(w.Failures))
		ok := 1.0
		if w.CheckpointProblem {
			ok = 0
		}
		gauge(ch, ledgerCheckpointOK, ok)
	}, ledgerAcknowledged, ledgerFailures, ledgerCheckpointOK)
}
