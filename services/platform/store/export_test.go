package store

import (
	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

// PageWithin is Table.Page with another scan budget, for the tests of the budget.
func PageWithin[M proto.Message](t Table[M], tx *bbolt.Tx, r Range, size, budget int, keep func(key []byte, m M) bool) (Page[M], error) {
	return t.pageWithin(tx, r, size, budget, keep)
}
