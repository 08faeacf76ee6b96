package registry

import (
	"bytes"

	"go.etcd.io/bbolt"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/platform/store"
)

// The registry's storage: regions by code (code -> Region) and pairings by
// "{receiving}-{sending}" (-> Pairing), so that key order is (receiving, sending) order. The
// bucket names are those of the files written before this package existed.
var (
	regionsTable  = store.NewTable[*coordinationv1.Region]([]byte("regions"))
	pairingsTable = store.NewTable[*coordinationv1.Pairing]([]byte("pairings"))
)

// Buckets are the registry's buckets, for the service's store.Schema.
var Buckets = [][]byte{regionsTable.Name(), pairingsTable.Name()}

// pairingKey is the key of a pairing: receiving-sending ("440000-520000").
func pairingKey(p regions.Pairing) []byte { return []byte(p.Receiving + "-" + p.Sending) }

// parsePairingKey returns the pairing of a pairing key (ok false if k has no '-').
func parsePairingKey(k []byte) (regions.Pairing, bool) {
	recv, send, ok := bytes.Cut(k, []byte("-"))
	return regions.Pairing{Receiving: string(recv), Sending: string(send)}, ok
}

// Paired reports whether the pairing is registered.
func Paired(tx *bbolt.Tx, p regions.Pairing) (bool, error) {
	return pairingsTable.Has(tx, pairingKey(p))
}

// Pairings returns the registered pairings in (receiving, sending) order.
func Pairings(tx *bbolt.Tx) ([]regions.Pairing, error) {
	var out []regions.Pairing
	err := pairingsTable.Scan(tx, store.Range{}, func(k []byte, _ *coordinationv1.Pairing) (bool, error) {
		p, _ := parsePairingKey(k)
		out = append(out, p)
		return true, nil
	})
	return out, err
}

// registered returns the region registered under code, if any.
func registered(tx *bbolt.Tx, code string) (*coordinationv1.Region, bool, error) {
	return regionsTable.Get(tx, []byte(code))
}

// Role returns the province's role: from its registry entry, else from the registered pairings,
// else from the default pairing table; unspecified if none says.
func Role(tx *bbolt.Tx, code string) (commonv1.RegionRole, error) {
	reg, ok, err := registered(tx, code)
	if err != nil {
		return 0, err
	}
	pairings, err := Pairings(tx)
	if err != nil {
		return 0, err
	}
	var have commonv1.RegionRole
	if ok {
		have = reg.GetRole()
	}
	return resolveRole(have, pairings, code), nil
}

// Provinces returns, in code order, every province in the region registry or in a registered
// pairing.
func Provinces(tx *bbolt.Tx) ([]string, error) {
	set := map[string]bool{}
	err := regionsTable.Scan(tx, store.Range{}, func(k []byte, _ *coordinationv1.Region) (bool, error) {
		set[string(k)] = true
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	pairings, err := Pairings(tx)
	if err != nil {
		return nil, err
	}
	for _, p := range pairings {
		set[p.Receiving], set[p.Sending] = true, true
	}
	return sortedSet(set), nil
}
