package transport

import (
	"testing"
	"time"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	"github.com/eastwest/labourlink/services/codes/civil"
)

func TestSeats(t *testing.T) {
	t.Parallel()
	given := Seats{Train: 60}.withDefaults()
	for _, tt := range []struct {
		mode commonv1.TransportMode
		want int
	}{
		{commonv1.TransportMode_TRANSPORT_MODE_UNSPECIFIED, DefaultSeats.Bus},
		{commonv1.TransportMode_TRANSPORT_MODE_BUS, DefaultSeats.Bus},
		{commonv1.TransportMode_TRANSPORT_MODE_TRAIN, 60},
		{commonv1.TransportMode_TRANSPORT_MODE_FLIGHT, DefaultSeats.Flight},
	} {
		if got := given.of(tt.mode); got != tt.want {
			t.Errorf("seats of %s = %d, want %d", tt.mode, got, tt.want)
		}
	}
	if got := (Seats{Bus: -1}).withDefaults(); got != DefaultSeats {
		t.Errorf("defaults of a negative bus = %+v, want %+v", got, DefaultSeats)
	}
}

func TestDefaultDeparture(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		start *commonv1.Date
		want  time.Time
	}{
		{&commonv1.Date{Year: 2027, Month: 3, Day: 10}, time.Date(2027, 3, 8, 8, 0, 0, 0, civil.Zone)},
		{&commonv1.Date{Year: 2027, Month: 3, Day: 1}, time.Date(2027, 2, 27, 8, 0, 0, 0, civil.Zone)},  // across a month
		{&commonv1.Date{Year: 2027, Month: 1, Day: 2}, time.Date(2026, 12, 31, 8, 0, 0, 0, civil.Zone)}, // across a year
	} {
		if got := DefaultDeparture(tt.start).AsTime(); !got.Equal(tt.want) {
			t.Errorf("DefaultDeparture(%s) = %v, want %v", civil.Format(tt.start), got.In(civil.Zone), tt.want)
		}
	}
}
