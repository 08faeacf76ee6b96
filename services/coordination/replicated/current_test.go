package replicated

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/eastwest/labourlink/services/platform/replog"
	"github.com/eastwest/labourlink/services/platform/store"
)

// TestJudge: look by look, when a node is current.
func TestJudge(t *testing.T) {
	cfg := WatchConfig{MaxLag: 10, CutOff: 30 * time.Second}
	noLeader := errors.New("no leader")
	type look struct {
		at      time.Duration // after the start
		last    uint64
		err     error
		applied uint64
		current bool
		why     string // in why, when not current
	}
	tests := []struct {
		name  string
		looks []look
	}{
		{"caught up", []look{{1 * time.Second, 5, nil, 5, true, ""}, {2 * time.Second, 9, nil, 9, true, ""}}},
		{"behind within MaxLag", []look{{1 * time.Second, 100, nil, 90, true, ""}, {2 * time.Second, 200, nil, 190, true, ""}}},
		{"over MaxLag once is a blip", []look{{1 * time.Second, 100, nil, 50, true, ""}, {2 * time.Second, 100, nil, 100, true, ""}}},
		{"over MaxLag twice", []look{
			{1 * time.Second, 100, nil, 50, true, ""},
			{2 * time.Second, 200, nil, 60, false, "140 commands behind"},
			{3 * time.Second, 200, nil, 195, true, ""},
		}},
		{"applied ahead of a stale answer", []look{{1 * time.Second, 5, nil, 7, true, ""}, {2 * time.Second, 5, nil, 7, true, ""}}},
		{"an election keeps the state", []look{
			{1 * time.Second, 5, nil, 5, true, ""},
			{10 * time.Second, 0, noLeader, 5, true, ""},
			{31 * time.Second, 0, noLeader, 5, true, ""}, // 30 s since the last answer: not over
			{32 * time.Second, 9, nil, 9, true, ""},
		}},
		{"cut off", []look{
			{1 * time.Second, 5, nil, 5, true, ""},
			{32 * time.Second, 0, noLeader, 5, false, "no answer from the command stream's leader for 31s"},
			{33 * time.Second, 9, nil, 9, true, ""},
		}},
		{"never answered", []look{{31 * time.Second, 0, noLeader, 0, false, "no answer"}}},
		{"behind stays behind through an election", []look{
			{1 * time.Second, 100, nil, 0, true, ""},
			{2 * time.Second, 100, nil, 0, false, "100 commands behind"},
			{3 * time.Second, 0, noLeader, 0, false, "100 commands behind"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
			j := newJudge(cfg, start)
			for i, l := range tt.looks {
				current, why := j.look(start.Add(l.at), l.last, l.err, l.applied)
				if current != l.current || (!current && !strings.Contains(why, l.why)) || (current && why != "") {
					t.Errorf("look %d: current %v (%q), want %v (%q)", i, current, why, l.current, l.why)
				}
			}
		})
	}
}

// TestWatch: a real node of one NATS server. Commands appended while the node does not apply
// make it not current; applying them makes it current again; the NATS server gone, it is not
// current once CutOff has passed.
func TestWatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := replog.StartNode(replog.NodeOptions{Name: "solo", StoreDir: t.TempDir(), ClientListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown()
	l, err := replog.Open(ctx, []string{n.ClientURL()}, "WATCH", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	db, err := store.Open(filepath.Join(t.TempDir(), "c.db"), store.Schema{Name: "watch", Version: 1, Buckets: Buckets}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	w, err := New(l, db, "solo", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := l.Append(ctx, replog.Command{Method: BarrierMethod, ID: fmt.Sprintf("b%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	type report struct {
		current bool
		why     string
	}
	reports := make(chan report, 16)
	wctx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		w.Watch(wctx, WatchConfig{Every: 50 * time.Millisecond, MaxLag: 2, CutOff: time.Second}, func(current bool, why string) {
			reports <- report{current, why}
		})
	})
	next := func(want bool, why string) {
		t.Helper()
		select {
		case r := <-reports:
			if r.current != want || !strings.Contains(r.why, why) {
				t.Fatalf("report %+v, want current %v (%q)", r, want, why)
			}
		case <-ctx.Done():
			t.Fatalf("no report (want current %v)", want)
		}
	}
	next(true, "")                   // the first look: one look over MaxLag is a blip
	next(false, "5 commands behind") // the second
	rctx, stopRun := context.WithCancel(ctx)
	wg.Go(func() { _ = w.Run(rctx) })
	next(true, "")
	if a, err := Applied(db); err != nil || a != 5 {
		t.Errorf("applied %d, %v; want 5", a, err)
	}
	n.Shutdown()
	next(false, "no answer from the command stream's leader")
	stopRun()
	stopWatch()
	wg.Wait()
}
