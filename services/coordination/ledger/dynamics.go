package ledger

// Employment dynamics from the ledger (labourlink.coordination.v1.DynamicsService): counts kept
// per day and per year in the transaction that records each event, so that the figures of any
// day are read in O(days) without loading events (coordination schema version 5).
//
// What "out at work" means is services/platform/outatwork's; the ledger keeps, per worker, what
// its events say of each trip (dynTrips, worker -> storagev1.DynamicsTrips: batch, provinces,
// registered-poor, departure day, end day, no-show) and, from the worker's spells of
// registered-poor trips, two counts:
//
//	dynDays   sending(6) receiving(6) day(4)  -> int64: workers who began (+) or ended (-) a
//	          spell to receiving that day. Out at work on D = the sum over days <= D.
//	dynYears  sending(6) receiving(6) year(2) -> int64: workers with a spell to receiving that
//	          began in the year who were not out to receiving on 1 January of it (receiving
//	          "000000": to any destination, not out at all on 1 January).
//
// and the same two counts by home county and by occupation (coordination schema version 7), with
// a dimension tag in the key and the code in place of the destination (the worker's home_county,
// the trip's occupation, from the DEPARTED events' details; NUL bytes: not recorded):
//
//	dynDimDays   sending(6) dim(1) code(6) day(4)  -> int64
//	dynDimYears  sending(6) dim(1) code(6) year(2) -> int64: workers with a spell of that code
//	             that began in the year who were not out with that code on 1 January.
//
// So the distinct workers out at any time in year Y (to a destination, or to any) are those out
// on 1 January of Y plus dynYears of Y: a spell that touches the year covers 1 January or
// begins in it. Every event that changes a worker's trips takes the worker's old counts off and
// puts the new ones on, so late and out-of-order facts land on the days they happened.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	storagev1 "github.com/eastwest/labourlink/proto/labourlink/storage/v1"
	"github.com/eastwest/labourlink/services/platform/outatwork"
	"github.com/eastwest/labourlink/services/platform/store"
)

var (
	dynTrips = store.NewTable[*storagev1.DynamicsTrips]([]byte("ledgerDynamicsTrips"))
	dynDays  = []byte("ledgerDynamicsDays")
	dynYears = []byte("ledgerDynamicsYears")
	// The counts by home county and by occupation (coordination schema version 7).
	dynDimDays  = []byte("ledgerDynamicsDimDays")
	dynDimYears = []byte("ledgerDynamicsDimYears")
)

// The dimensions of dynDimDays and dynDimYears.
const (
	DimHomeCounty byte = 'c'
	DimOccupation byte = 'o'
)

var dimensions = []byte{DimHomeCounty, DimOccupation}

// dimCodeLen is the room of a code in the dimension keys (a 4-digit occupation is NUL-padded).
const dimCodeLen = 6

// dimCode is the code of trip t of a worker with trips rec in dimension dim ("" not recorded).
func dimCode(dim byte, rec *storagev1.DynamicsTrips, t *storagev1.DynamicsTrip) string {
	if dim == DimHomeCounty {
		return rec.GetHomeCounty()
	}
	return t.GetOccupation()
}

func dimPrefix(sending string, dim byte, code string) []byte {
	k := make([]byte, 0, 17)
	k = append(append(k, sending...), dim)
	k = append(k, code...)
	for len(k) < 7+dimCodeLen {
		k = append(k, 0)
	}
	return k
}

// anyDestination is the receiving code of dynYears' counts over every destination.
const anyDestination = "000000"

func dynDayKey(sending, receiving string, d outatwork.Day) []byte {
	k := make([]byte, 0, 16)
	k = append(append(k, sending...), receiving...)
	return binary.BigEndian.AppendUint32(k, uint32(d))
}

func dynYearKey(sending, receiving string, year int) []byte {
	k := make([]byte, 0, 14)
	k = append(append(k, sending...), receiving...)
	return binary.BigEndian.AppendUint16(k, uint16(year))
}

// dynamicsKind reports whether events of kind change a worker's trips for the dynamics.
func dynamicsKind(k coordinationv1.EventKind) bool {
	switch k {
	case coordinationv1.EventKind_EVENT_KIND_DEPARTED, coordinationv1.EventKind_EVENT_KIND_RETURNED_HOME,
		coordinationv1.EventKind_EVENT_KIND_LEFT_JOB, coordinationv1.EventKind_EVENT_KIND_NO_SHOW:
		return true
	}
	return false
}

// applyDynamics writes what ev says on the worker's trips rec; it reports whether rec changed.
func applyDynamics(rec *storagev1.DynamicsTrips, ev *coordinationv1.LedgerEvent) bool {
	if !dynamicsKind(ev.GetKind()) || ev.GetBatchId() == "" {
		return false
	}
	var t *storagev1.DynamicsTrip
	for _, x := range rec.GetTrips() {
		if x.GetBatchId() == ev.GetBatchId() {
			t = x
		}
	}
	if t == nil {
		t = &storagev1.DynamicsTrip{BatchId: ev.GetBatchId(), SendingRegion: ev.GetSendingRegion(), ReceivingRegion: ev.GetReceivingRegion()}
		rec.Trips = append(rec.Trips, t)
	}
	changed := false
	set := func(field *int32, v int32) {
		if *field != v {
			*field, changed = v, true
		}
	}
	setString := func(field *string, v string) {
		if v != "" && *field != v {
			*field, changed = v, true
		}
	}
	day := int32(outatwork.DayOfTime(ev.GetOccurTime().AsTime()))
	switch ev.GetKind() {
	case coordinationv1.EventKind_EVENT_KIND_DEPARTED:
		if t.DepartureDay == 0 || day < t.DepartureDay {
			set(&t.DepartureDay, day)
		}
		if ev.GetRegisteredPoor() && !t.RegisteredPoor {
			t.RegisteredPoor, changed = true, true
		}
		setString(&rec.HomeCounty, ev.GetDeparted().GetHomeCounty())
		setString(&t.Occupation, ev.GetDeparted().GetOccupation())
	case coordinationv1.EventKind_EVENT_KIND_RETURNED_HOME, coordinationv1.EventKind_EVENT_KIND_LEFT_JOB:
		if t.EndDay == 0 || day < t.EndDay {
			set(&t.EndDay, day)
		}
	case coordinationv1.EventKind_EVENT_KIND_NO_SHOW:
		if !t.NoShow {
			t.NoShow, changed = true, true
		}
	}
	return changed
}

// dynCounts are one worker's contributions to the counts: dynDays and dynDimDays deltas (a key
// may come more than once: its deltas add up) and dynYears and dynDimYears keys (each once). A
// worker has a few trips, so slices: no maps to make for each event.
type dynCounts struct {
	days     []countDelta
	years    []string
	dimDays  []countDelta
	dimYears []string
}

// countDelta is a change n of the count under key.
type countDelta struct {
	key string
	n   int64
}

// addOnce appends k to keys unless it is there already.
func addOnce(keys []string, k string) []string {
	if slices.Contains(keys, k) {
		return keys
	}
	return append(keys, k)
}

// dynamicsCounts returns the contributions of a worker with trips rec.
func dynamicsCounts(rec *storagev1.DynamicsTrips) dynCounts {
	var c dynCounts
	trips := rec.GetTrips()
	in := make([]outatwork.Trip, len(trips))
	for i, t := range trips {
		in[i] = outatwork.Trip{Depart: outatwork.Day(t.GetDepartureDay()), End: outatwork.Day(t.GetEndDay()), NoShow: t.GetNoShow()}
	}
	var spells []outatwork.Spell
	for _, sp := range outatwork.Spells(in) {
		if trips[sp.Trip].GetRegisteredPoor() {
			spells = append(spells, sp)
		}
	}
	for _, sp := range spells {
		t := trips[sp.Trip]
		c.days = append(c.days, countDelta{string(dynDayKey(t.GetSendingRegion(), t.GetReceivingRegion(), sp.From)), 1})
		if sp.To != 0 {
			c.days = append(c.days, countDelta{string(dynDayKey(t.GetSendingRegion(), t.GetReceivingRegion(), sp.To)), -1})
		}
		y := int(sp.From.Date().GetYear())
		jan := outatwork.YearStart(y)
		out, ok := outatwork.Covering(spells, jan)
		if !ok {
			c.years = addOnce(c.years, string(dynYearKey(t.GetSendingRegion(), anyDestination, y)))
		}
		if !ok || trips[out.Trip].GetReceivingRegion() != t.GetReceivingRegion() {
			c.years = addOnce(c.years, string(dynYearKey(t.GetSendingRegion(), t.GetReceivingRegion(), y)))
		}
		for _, dim := range dimensions {
			code := dimCode(dim, rec, t)
			p := dimPrefix(t.GetSendingRegion(), dim, code)
			c.dimDays = append(c.dimDays, countDelta{string(binary.BigEndian.AppendUint32(slices.Clip(p), uint32(sp.From))), 1})
			if sp.To != 0 {
				c.dimDays = append(c.dimDays, countDelta{string(binary.BigEndian.AppendUint32(slices.Clip(p), uint32(sp.To))), -1})
			}
			if !ok || dimCode(dim, rec, trips[out.Trip]) != code {
				c.dimYears = addOnce(c.dimYears, string(binary.BigEndian.AppendUint16(slices.Clip(p), uint16(y))))
			}
		}
	}
	return c
}

// addCount adds n to the int64 count under k in bucket name (a count of 0 is deleted).
func addCount(tx *bbolt.Tx, name []byte, k string, n int64) error {
	b := tx.Bucket(name)
	if b == nil {
		return fmt.Errorf("bucket %s does not exist", name)
	}
	return addCountIn(b, store.NewLookup(b), k, n)
}

// write is addCount through c's lookup of the bucket.
func (c *counts) write(name []byte, k string, n int64) error {
	l, err := c.lookup(name)
	if err != nil {
		return err
	}
	return addCountIn(c.tx.Bucket(name), l, k, n)
}

// addCountIn adds n to the count under k in b, read through l (a Lookup of b).
func addCountIn(b *bbolt.Bucket, l store.Lookup, k string, n int64) error {
	if n == 0 {
		return nil
	}
	v := int64(0)
	if old := l.Get([]byte(k)); len(old) == 8 {
		v = int64(binary.BigEndian.Uint64(old))
	}
	if v += n; v == 0 {
		return b.Delete([]byte(k))
	}
	return b.Put([]byte(k), binary.BigEndian.AppendUint64(nil, uint64(v)))
}

// moveCounts takes the contributions old off the counts and puts new on (what old and new
// share cancels out in the pending deltas, which flush does not write).
func moveCounts(c *counts, old, new dynCounts) {
	moveDays(c, dynDays, old.days, new.days)
	moveYears(c, dynYears, old.years, new.years)
	moveDays(c, dynDimDays, old.dimDays, new.dimDays)
	moveYears(c, dynDimYears, old.dimYears, new.dimYears)
}

// moveDays moves the day deltas of bucket name from old to new.
func moveDays(c *counts, name []byte, old, new []countDelta) {
	for _, d := range old {
		c.add(name, d.key, -d.n)
	}
	for _, d := range new {
		c.add(name, d.key, d.n)
	}
}

// moveYears moves the year keys of bucket name from old to new.
func moveYears(c *counts, name []byte, old, new []string) {
	for _, k := range old {
		c.add(name, k, -1)
	}
	for _, k := range new {
		c.add(name, k, 1)
	}
}

// trackDynamics updates the worker's trips and the counts for the recorded event ev.
func trackDynamics(tx *bbolt.Tx, c *counts, ev *coordinationv1.LedgerEvent) error {
	if !dynamicsKind(ev.GetKind()) || ev.GetBatchId() == "" {
		return nil
	}
	key := []byte(ev.GetWorkerId())
	l, err := c.lookup(dynTrips.Name())
	if err != nil {
		return err
	}
	rec, ok, err := dynTrips.GetWith(l, key)
	if err != nil {
		return err
	}
	if !ok {
		rec = &storagev1.DynamicsTrips{}
	}
	old := dynamicsCounts(rec)
	if !applyDynamics(rec, ev) {
		return nil
	}
	moveCounts(c, old, dynamicsCounts(rec))
	return dynTrips.Put(tx, key, rec)
}

// dynBuckets are the buckets of the dynamics.
var dynBuckets = [][]byte{dynTrips.Name(), dynDays, dynYears, dynDimDays, dynDimYears}

// RebuildDynamics builds the dynamics anew from the stored events (coordination schema version
// 7: the counts by home county and occupation): the buckets are emptied, then MigrateDynamics.
func RebuildDynamics(tx *bbolt.Tx) error {
	for _, name := range dynBuckets {
		if tx.Bucket(name) == nil {
			continue
		}
		if err := tx.DeleteBucket(name); err != nil {
			return err
		}
	}
	return MigrateDynamics(tx)
}

// MigrateDynamics builds the workers' trips and the counts of the dynamics (coordination schema
// version 5) from the events of a file written before them, worker by worker (the by-worker
// index), so that memory holds one worker's events at a time.
func MigrateDynamics(tx *bbolt.Tx) error {
	for _, name := range dynBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	if tx.Bucket(byWorker.name) == nil {
		return nil
	}
	var worker string
	rec := &storagev1.DynamicsTrips{}
	c := newCounts(tx)
	flush := func() error {
		if len(rec.GetTrips()) == 0 {
			return nil
		}
		moveCounts(c, dynCounts{}, dynamicsCounts(rec))
		return dynTrips.Put(tx, []byte(worker), rec)
	}
	err := byWorker.scan(tx, store.Range{}, func(k []byte) (bool, error) {
		id, seq, ok := parseIDKey(k)
		if !ok {
			return false, fmt.Errorf("by-worker index key %q is not worker NUL seq", k)
		}
		if id != worker {
			if err := flush(); err != nil {
				return false, err
			}
			worker, rec = id, &storagev1.DynamicsTrips{}
		}
		ev, err := event(tx, seq)
		if err != nil {
			return false, err
		}
		applyDynamics(rec, ev)
		return true, nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return err
	}
	return c.flush()
}

// DynamicsCounts are the dynamics' counts of figures f: per (sending, receiving) pair, and per
// sending province over every destination (a worker out to two destinations in the year before
// counts once there).
type DynamicsCounts struct {
	Pairs   map[[2]string]*outatwork.Counts
	Sending map[string]*outatwork.Counts
	// By dimension (DimHomeCounty, DimOccupation), by code ("": not recorded), over the sending
	// provinces read (a worker is of one sending province, so the sum is of distinct workers).
	Dims map[byte]map[string]*outatwork.Counts
}

// Dynamics reads the counts of figures f for the sending province sending ("" for all), inside
// tx: one pass over the day counts of the province (or the nation) and over its year counts.
func Dynamics(tx *bbolt.Tx, sending string, f outatwork.Figures) (DynamicsCounts, error) {
	out := DynamicsCounts{Pairs: map[[2]string]*outatwork.Counts{}, Sending: map[string]*outatwork.Counts{}, Dims: map[byte]map[string]*outatwork.Counts{}}
	get := func(m map[[2]string]*outatwork.Counts, k [2]string) *outatwork.Counts {
		c := m[k]
		if c == nil {
			c = &outatwork.Counts{}
			m[k] = c
		}
		return c
	}
	jan := outatwork.YearStart(f.LastYear)
	days, years := tx.Bucket(dynDays), tx.Bucket(dynYears)
	if days == nil || years == nil {
		return out, fmt.Errorf("buckets %s, %s do not exist", dynDays, dynYears)
	}
	prefix := []byte(sending)
	c := days.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) != 16 || len(v) != 8 {
			return out, fmt.Errorf("dynamics day count %q is malformed", k)
		}
		d, n := outatwork.Day(binary.BigEndian.Uint32(k[12:])), int64(binary.BigEndian.Uint64(v))
		pc := get(out.Pairs, [2]string{string(k[:6]), string(k[6:12])})
		if d <= f.AsOf {
			pc.AsOf += n
		}
		if d <= f.SameDay {
			pc.SameDay += n
		}
		if d <= jan {
			pc.LastYear += n // out on 1 January; the year's starters are added below
		}
	}
	perSending := func(s string) *outatwork.Counts {
		sc := out.Sending[s]
		if sc == nil {
			sc = &outatwork.Counts{}
			out.Sending[s] = sc
		}
		return sc
	}
	for k, pc := range out.Pairs {
		sc := perSending(k[0])
		sc.AsOf += pc.AsOf
		sc.SameDay += pc.SameDay
		sc.LastYear += pc.LastYear
	}
	c = years.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) != 14 || len(v) != 8 {
			return out, fmt.Errorf("dynamics year count %q is malformed", k)
		}
		if int(binary.BigEndian.Uint16(k[12:])) != f.LastYear {
			continue
		}
		n := int64(binary.BigEndian.Uint64(v))
		s, r := string(k[:6]), string(k[6:12])
		if r == anyDestination {
			perSending(s).LastYear += n
			continue
		}
		get(out.Pairs, [2]string{s, r}).LastYear += n
	}
	return out, dimensionCounts(tx, prefix, f, out.Dims)
}

// dimensionCounts adds the counts by dimension of figures f of the sending provinces with
// prefix to dims.
func dimensionCounts(tx *bbolt.Tx, prefix []byte, f outatwork.Figures, dims map[byte]map[string]*outatwork.Counts) error {
	get := func(k []byte) *outatwork.Counts {
		dim, code := k[6], string(bytes.TrimRight(k[7:7+dimCodeLen], "\x00"))
		m := dims[dim]
		if m == nil {
			m = map[string]*outatwork.Counts{}
			dims[dim] = m
		}
		c := m[code]
		if c == nil {
			c = &outatwork.Counts{}
			m[code] = c
		}
		return c
	}
	days, years := tx.Bucket(dynDimDays), tx.Bucket(dynDimYears)
	if days == nil || years == nil {
		return fmt.Errorf("buckets %s, %s do not exist", dynDimDays, dynDimYears)
	}
	jan := outatwork.YearStart(f.LastYear)
	c := days.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) != 7+dimCodeLen+4 || len(v) != 8 {
			return fmt.Errorf("dynamics dimension day count %q is malformed", k)
		}
		d, n := outatwork.Day(binary.BigEndian.Uint32(k[7+dimCodeLen:])), int64(binary.BigEndian.Uint64(v))
		dc := get(k)
		if d <= f.AsOf {
			dc.AsOf += n
		}
		if d <= f.SameDay {
			dc.SameDay += n
		}
		if d <= jan {
			dc.LastYear += n
		}
	}
	c = years.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) != 7+dimCodeLen+2 || len(v) != 8 {
			return fmt.Errorf("dynamics dimension year count %q is malformed", k)
		}
		if int(binary.BigEndian.Uint16(k[7+dimCodeLen:])) != f.LastYear {
			continue
		}
		get(k).LastYear += int64(binary.BigEndian.Uint64(v))
	}
	return nil
}
