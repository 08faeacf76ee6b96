package demand

import (
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	receivingv1 "github.com/eastwest/labourlink/proto/labourlink/receiving/v1"
	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/platform/store"
)

func testDB(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "sending.db"),
		store.Schema{Name: "sending", Version: 2, Buckets: append(Buckets(), store.BucketCounters)}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// The replica keeps the newest revision of each vacancy: an older or equal one (a replay after a
// re-listing) is skipped; dropping a province's replica leaves the others'.
func TestReplicaRevisions(t *testing.T) {
	t.Parallel()
	db := testDB(t)
	open := receivingv1.VacancyStatus_VACANCY_STATUS_OPEN
	vac := func(id string, headcount int32) *receivingv1.Vacancy {
		return &receivingv1.Vacancy{VacancyId: id, Status: open, Headcount: headcount}
	}
	steps := []struct {
		code   string
		v      *receivingv1.Vacancy
		rev    int64
		stored bool
	}{
		{"440000", vac("v1", 3), 5, true},
		{"440000", vac("v1", 9), 5, false}, // a repeat of revision 5
		{"440000", vac("v1", 9), 4, false}, // older
		{"440000", vac("v1", 2), 7, true},
		{"330000", vac("v1", 1), 1, true}, // another province, the same vacancy id
		{"440000", &receivingv1.Vacancy{}, 8, false},
	}
	err := db.Update(func(tx *bbolt.Tx) error {
		for i, st := range steps {
			ok, err := putReplica(tx, st.code, st.v, st.rev)
			if err != nil {
				return err
			}
			if ok != st.stored {
				t.Errorf("step %d: stored %v, want %v", i, ok, st.stored)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		dv, ok, err := Vacancy(tx, "440000", "v1")
		if err != nil || !ok || dv.GetRevision() != 7 || dv.GetVacancy().GetHeadcount() != 2 || dv.GetReceivingRegion() != "440000" {
			t.Errorf("replica of 440000/v1 = %v, %v, %v; want revision 7, headcount 2", dv, ok, err)
		}
		if err := putPosition(tx, feedDemand, "440000", &sendingv1.FollowPosition{ReceivingRegion: "440000"}); err != nil {
			return err
		}
		if err := dropReplica(tx, "440000"); err != nil {
			return err
		}
		if _, ok, _ := Vacancy(tx, "440000", "v1"); ok {
			t.Error("dropped replica still holds 440000/v1")
		}
		if _, found, _ := getPosition(tx, feedDemand, "440000"); found {
			t.Error("dropped replica still has its position")
		}
		if _, ok, _ := Vacancy(tx, "330000", "v1"); !ok {
			t.Error("dropping 440000 dropped 330000's vacancy")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Open demand for a match run: OPEN and not past its valid-through date.
func TestHasOpenDemand(t *testing.T) {
	t.Parallel()
	db := testDB(t)
	today := matchDate(&commonv1.Date{Year: 2026, Month: 12, Day: 1})
	err := db.Update(func(tx *bbolt.Tx) error {
		for _, v := range []struct {
			code string
			vac  *receivingv1.Vacancy
		}{
			{"440000", &receivingv1.Vacancy{VacancyId: "closed", Status: receivingv1.VacancyStatus_VACANCY_STATUS_CLOSED}},
			{"440000", &receivingv1.Vacancy{VacancyId: "expired", Status: receivingv1.VacancyStatus_VACANCY_STATUS_OPEN, ValidThrough: &commonv1.Date{Year: 2026, Month: 11, Day: 30}}},
			{"330000", &receivingv1.Vacancy{VacancyId: "today", Status: receivingv1.VacancyStatus_VACANCY_STATUS_OPEN, ValidThrough: &commonv1.Date{Year: 2026, Month: 12, Day: 1}}},
		} {
			if _, err := putReplica(tx, v.code, v.vac, 1); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.View(func(tx *bbolt.Tx) error {
		for code, want := range map[string]bool{"440000": false, "330000": true, "320000": false} {
			if got, err := hasOpenDemand(tx, code, today); err != nil || got != want {
				t.Errorf("hasOpenDemand(%s) = %v, %v; want %v", code, got, err, want)
			}
		}
		if got := replicaRegions(tx); len(got) != 2 || got[0] != "330000" || got[1] != "440000" {
			t.Errorf("replicaRegions = %v", got)
		}
		return nil
	})
}
