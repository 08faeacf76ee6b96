package replicated

import (
	"context"
	"fmt"
	"time"
)

// Currency: whether a node's answers are current. A node answers reads from its own file,
// which is as current as the commands its applier has applied. Watch compares that with the
// stream's last sequence, as the stream's leader knows it, and says a node is not current when
// it is more than MaxLag commands behind on two looks in a row (a slow disk, an applier
// restarting its consumer), or when no leader has answered it for CutOff (this node cut off
// from the others: what the others have taken since, it cannot know). An election, which
// leaves every node without a leader for seconds, is shorter than CutOff, so the nodes keep
// answering reads through it (docs/replication.md).

// WatchConfig sets Watch; a zero field takes its default.
type WatchConfig struct {
	Every  time.Duration // between looks at the stream (DefaultWatchEvery)
	MaxLag uint64        // commands behind the stream still current (DefaultMaxLag)
	CutOff time.Duration // without an answer from the stream's leader still current (DefaultCutOff)
}

// The defaults of WatchConfig.
const (
	DefaultWatchEvery = time.Second
	// DefaultMaxLag is about a second of the ledger's peak writes (ReportEvents calls).
	DefaultMaxLag = 1000
	// DefaultCutOff is three times the longest leader election measured (BENCHMARKS.md,
	// "Replicated engines": 5.8–7.5 s).
	DefaultCutOff = 30 * time.Second
)

func (c WatchConfig) withDefaults() WatchConfig {
	if c.Every <= 0 {
		c.Every = DefaultWatchEvery
	}
	if c.MaxLag == 0 {
		c.MaxLag = DefaultMaxLag
	}
	if c.CutOff <= 0 {
		c.CutOff = DefaultCutOff
	}
	return c
}

// judge decides, look by look, whether a node is current.
type judge struct {
	cfg      WatchConfig
	answered time.Time // the last look the leader answered (or the start)
	over     int       // looks in a row more than MaxLag behind
	current  bool
	why      string
}

func newJudge(cfg WatchConfig, start time.Time) *judge {
	return &judge{cfg: cfg.withDefaults(), answered: start, current: true}
}

// look takes one look at now: the stream's last sequence and its error, and what this node has
// applied. It returns whether the node is current and, when not, why.
func (j *judge) look(now time.Time, last uint64, err error, applied uint64) (bool, string) {
	if err != nil {
		if gone := now.Sub(j.answered); gone > j.cfg.CutOff {
			j.current, j.why = false, fmt.Sprintf("no answer from the command stream's leader for %s (%v): this node cannot know what it has missed", gone.Round(time.Second), err)
		}
		// Shorter: an election, most likely; the node stays as it was.
		return j.current, j.why
	}
	j.answered = now
	var lag uint64
	if last > applied {
		lag = last - applied
	}
	if lag > j.cfg.MaxLag {
		j.over++
	} else {
		j.over = 0
	}
	if j.over >= 2 {
		j.current, j.why = false, fmt.Sprintf("%d commands behind the command stream (applied %d of %d)", lag, applied, last)
	} else {
		j.current, j.why = true, ""
	}
	return j.current, j.why
}

// Watch looks at the stream every cfg.Every until ctx ends and tells report whether this node
// is current (see WatchConfig): once at the first look, and whenever it changes.
func (w *Writer) Watch(ctx context.Context, cfg WatchConfig, report func(current bool, why string)) {
	j := newJudge(cfg, time.Now())
	t := time.NewTicker(j.cfg.Every)
	defer t.Stop()
	first, was := true, true
	for {
		lctx, cancel := context.WithTimeout(ctx, j.cfg.Every)
		last, err := w.log.LastSeq(lctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		current, why := j.look(time.Now(), last, err, w.log.Applied())
		if first || current != was {
			report(current, why)
			first, was = false, current
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
