package coordination

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/eastwest/labourlink/services/codes/civil"
	"github.com/eastwest/labourlink/services/codes/workcalendar"
	"github.com/eastwest/labourlink/services/platform/store"
)

// The calendar's health follows the clock: SERVING in a year the holiday calendar covers, NOT
// SERVING (with an error line naming the year) in one it does not, and a warning in the month
// before a year it does not cover yet.
func TestCalendarHealthFollowsTheYear(t *testing.T) {
	t.Parallel()
	years := workcalendar.China().Years()
	last := years[len(years)-1]
	tests := []struct {
		name    string
		now     time.Time
		serving bool
		log     string // a message logged, "" for none
		level   zapcore.Level
	}{
		{"a covered year, far from its end", time.Date(last, 3, 1, 9, 0, 0, 0, civil.Zone), true, "", 0},
		{"the last covered year's December", time.Date(last, 12, 5, 9, 0, 0, 0, civil.Zone), true, "the work calendar does not cover next year yet: add its holidays before it begins", zapcore.WarnLevel},
		{"a year after the calendar", time.Date(last+1, 1, 2, 9, 0, 0, 0, civil.Zone), false, "the work calendar does not cover this year: working-day deadlines count weekends only; add the year's holidays to services/codes/workcalendar/holidays-cn.csv", zapcore.ErrorLevel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			core, logs := observer.New(zapcore.InfoLevel)
			db, err := store.Open(filepath.Join(t.TempDir(), "coordination.db"), Schema, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var mu sync.Mutex
			got := map[string][]bool{}
			s, err := New(db, zap.New(core), Config{Now: func() time.Time { return tt.now }, CheckInterval: time.Hour,
				Health: func(name string, serving bool) {
					mu.Lock()
					defer mu.Unlock()
					got[name] = append(got[name], serving)
				}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); s.watchCalendar(ctx, workcalendar.China()) }()
			deadline := time.Now().Add(10 * time.Second)
			for {
				mu.Lock()
				n := len(got[CalendarHealthName])
				mu.Unlock()
				if n > 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
			<-done
			if h := got[CalendarHealthName]; len(h) != 1 || h[0] != tt.serving {
				t.Errorf("health %s: %v, want [%v]", CalendarHealthName, h, tt.serving)
			}
			var found bool
			for _, e := range logs.All() {
				if e.Message == tt.log && e.Level == tt.level {
					found = true
				}
				if tt.log == "" && e.Level >= zapcore.WarnLevel {
					t.Errorf("unexpected %s %q", e.Level, e.Message)
				}
			}
			if tt.log != "" && !found {
				t.Errorf("no %s line %q in %v", tt.level, tt.log, logs.All())
			}
		})
	}
}
