package regions

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// Pairing is one east–west cooperation pair: a receiving province (east,
// with vacancies) and a sending province (west or centre, with workers). Both
// are 6-digit province codes.
type Pairing struct {
	Receiving string
	Sending   string
}

var (
	pairingsOnce    sync.Once
	defaultPairings []Pairing
)

// DefaultPairings returns the east–west cooperation pairs as adjusted in 2021
// (e.g. 440000 广东省 receiving from 520000 贵州省), in file order. Like
// Default, it panics only if the embedded data is broken, which the package
// tests check. The caller may modify the result.
func DefaultPairings() []Pairing {
	pairingsOnce.Do(func() {
		b, err := embedded.ReadFile("data/pairings.csv")
		if err == nil {
			defaultPairings, err = ParsePairings(bytes.NewReader(b), Default())
		}
		if err != nil {
			panic("regions: embedded pairings: " + err.Error())
		}
	})
	return append([]Pairing(nil), defaultPairings...)
}

// ParsePairings reads pairings in the layout of data/pairings.csv: a header
// with receiving_code and sending_code (name columns are ignored), then one
// pair a row. Both codes must be provinces of t, different from each other,
// and no pair may repeat.
func ParsePairings(r io.Reader, t *Table) ([]Pairing, error) {
	const name = "pairings"
	rows, err := parseTable(r, name, "receiving_code", "sending_code")
	if err != nil {
		return nil, err
	}
	seen := make(map[Pairing]bool, len(rows))
	out := make([]Pairing, 0, len(rows))
	for _, row := range rows {
		p := Pairing{Receiving: row.get("receiving_code"), Sending: row.get("sending_code")}
		for _, c := range []string{p.Receiving, p.Sending} {
			if !t.IsProvince(c) {
				return nil, row.errorf("%q is not a province code", c)
			}
		}
		if p.Receiving == p.Sending {
			return nil, row.errorf("province %s is paired with itself", p.Receiving)
		}
		if seen[p] {
			return nil, row.errorf("duplicate pairing %s-%s", p.Receiving, p.Sending)
		}
		seen[p] = true
		out = append(out, p)
	}
	return out, nil
}

// String returns "receiving->sending", e.g. "440000->520000".
func (p Pairing) String() string { return fmt.Sprintf("%s->%s", p.Receiving, p.Sending) }
