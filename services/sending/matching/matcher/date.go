package matcher

import (
	"fmt"
	"time"
)

// Date is a civil (calendar) date without time zone, stored as the number of days since
// 1970-01-01. It is small and ordered, so the matcher compares dates with integer comparisons.
type Date int32

// DateOf returns the date year-month-day. Out-of-range months and days are normalised the way
// time.Date does it (2026-02-30 is 2026-03-02).
func DateOf(year int, month time.Month, day int) Date {
	return Date(time.Date(year, month, day, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// ParseDate parses a date written YYYY-MM-DD.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, fmt.Errorf("parse date %q: %w", s, err)
	}
	return Date(t.Unix() / 86400), nil
}

// YMD returns the year, month and day of d.
func (d Date) YMD() (year int, month time.Month, day int) {
	return time.Unix(int64(d)*86400, 0).UTC().Date()
}

// String formats d as YYYY-MM-DD.
func (d Date) String() string {
	y, m, dd := d.YMD()
	return fmt.Sprintf("%04d-%02d-%02d", y, int(m), dd)
}

// AgeOn returns the age in whole years, on the date on, of a person born on birth: the number
// of birthdays that have come by on. Someone born on 29 February becomes a year older on
// 1 March in years without a 29 February.
func AgeOn(birth, on Date) int {
	by, bm, bd := birth.YMD()
	oy, om, od := on.YMD()
	age := oy - by
	if om < bm || (om == bm && od < bd) {
		age--
	}
	return age
}

// latestBirthForAge returns the last birth date of a person who is at least age years old on
// the date on: AgeOn(b, on) >= age exactly when b <= latestBirthForAge(on, age).
func latestBirthForAge(on Date, age int) Date {
	y, m, d := on.YMD()
	y -= age
	if m == time.February && d == 29 && !isLeap(y) {
		d = 28
	}
	return DateOf(y, m, d)
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }
