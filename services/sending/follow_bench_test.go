package sending

import (
	"testing"
	"time"
)

// BenchmarkDemandFeedFollower: the demand feed and its follower end to end. Vacancies are created
// one after the other on a real receiving service (gRPC on loopback, real bbolt file); a real
// sending service follows its demand feed (Run, its watch and store of the changes). Each round
// creates b.N vacancies, then waits until the follower has applied the feed's head.
//
//	go test ./services/sending -run '^$' -bench DemandFeedFollower -benchtime 500x -count 3
//
// (Every round is one subject: the producing rate measured in the same round is its baseline.)
// Metrics: produced/s (feed changes made by the creations per second of creating them),
// followed/s (changes applied by the follower per second, from the first creation to the
// follower's catching up), ratio (followed/s over produced/s) and lag-ms (from the last
// creation's acknowledgement to the follower having applied the head; polled every 2 ms).
func BenchmarkDemandFeedFollower(b *testing.B) {
	r := startReceiving(b, fastFeeds)
	n := startSending(b, "", fastConfig(r.addr), true)
	ctx := testCtx(b)
	applied := func() int64 {
		p, err := n.followPosition(ctx)
		if err != nil {
			b.Fatal(err)
		}
		return p.GetDemandLag().GetAppliedRevision()
	}
	vacancies := 0
	b.ResetTimer()
	{
		b.StopTimer()
		from := r.head()
		next := make([]int, b.N)
		for i := range next {
			vacancies++
			next[i] = vacancies
		}
		b.StartTimer()
		start := time.Now()
		for _, i := range next {
			r.createVacancy(testVacancy(b, i, flowCounty, "8212", 5))
		}
		produced := time.Since(start)
		b.StopTimer()
		head := r.head()
		b.StartTimer()
		var caught time.Duration
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(2 * time.Millisecond) {
			if applied() >= head {
				caught = time.Since(start)
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("the follower did not reach revision %d", head)
			}
		}
		b.StopTimer()
		changes := float64(head - from)
		b.ReportMetric(changes/produced.Seconds(), "produced/s")
		b.ReportMetric(changes/caught.Seconds(), "followed/s")
		b.ReportMetric(produced.Seconds()/caught.Seconds(), "ratio")
		b.ReportMetric(float64((caught-produced).Microseconds())/1000, "lag-ms")
		b.ReportMetric(changes/float64(b.N), "changes/vacancy")
	}
}
