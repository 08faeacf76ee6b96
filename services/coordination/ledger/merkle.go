package ledger

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"go.etcd.io/bbolt"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
	"github.com/eastwest/labourlink/services/platform/store"
)

// The verifiable ledger (coordination schema version 8): each reporter's recorded events, in the
// order recorded, are the leaves of an append-only RFC 6962 log (github.com/transparency-dev/merkle).
// The tree is kept in the report's transaction, so a checkpoint is durable when it is returned:
//
//	treeNodes   reporter(6) level(1) index(8) -> hash(32)  every node of a perfect subtree
//	treeLeaves  reporter(6) index(8)          -> seq(8)    the event of each leaf
//	treeSeqs    seq(8)                        -> index(8)  the leaf of each event
//	treeSizes   reporter(6)                   -> size(8)
//
// Appending stores the leaf and the nodes it completes (compact.Range visitor); a proof reads
// only the O(log n) nodes proof.Inclusion or proof.Consistency names, and a root the O(log n)
// nodes of the compact range [0, size).
var (
	treeNodes  = []byte("ledgerTreeNodes")
	treeLeaves = []byte("ledgerTreeLeaves")
	treeSeqs   = []byte("ledgerTreeSeqs")
	treeSizes  = []byte("ledgerTreeSizes")
)

// TreeBuckets are the buckets of the verifiable ledger (in Buckets).
var TreeBuckets = [][]byte{treeNodes, treeLeaves, treeSeqs, treeSizes}

var (
	hasher       = rfc6962.DefaultHasher
	rangeFactory = &compact.RangeFactory{Hash: hasher.HashChildren}
)

// treeNodeKey is reporter(6) level(1) index(8).
func treeNodeKey(reporter string, id compact.NodeID) []byte {
	k := make([]byte, 0, len(reporter)+9)
	k = append(k, reporter...)
	k = append(k, byte(id.Level))
	return binary.BigEndian.AppendUint64(k, id.Index)
}

// treeLeafKey is reporter(6) index(8).
func treeLeafKey(reporter string, index uint64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, len(reporter)+8), reporter...), index)
}

// treeSize returns the size of reporter's log.
func treeSize(tx *bbolt.Tx, reporter string) uint64 {
	v := tx.Bucket(treeSizes).Get([]byte(reporter))
	if len(v) != 8 {
		return 0
	}
	return store.KeyUint64(v)
}

// treeNode returns the stored hash of node id of reporter's log.
func treeNode(tx *bbolt.Tx, reporter string, id compact.NodeID) ([]byte, error) {
	v := tx.Bucket(treeNodes).Get(treeNodeKey(reporter, id))
	if len(v) != hasher.Size() {
		return nil, fmt.Errorf("ledger tree of %s lacks node (level %d, index %d)", reporter, id.Level, id.Index)
	}
	return bytes.Clone(v), nil
}

// treeNodes returns the stored hashes of ids.
func treeNodesOf(tx *bbolt.Tx, reporter string, ids []compact.NodeID) ([][]byte, error) {
	out := make([][]byte, len(ids))
	for i, id := range ids {
		h, err := treeNode(tx, reporter, id)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

// treeRange returns the compact range [0, size) of reporter's log.
func treeRange(tx *bbolt.Tx, reporter string, size uint64) (*compact.Range, error) {
	hashes, err := treeNodesOf(tx, reporter, compact.RangeNodes(0, size, nil))
	if err != nil {
		return nil, err
	}
	return rangeFactory.NewRange(0, size, hashes)
}

// treeRoot returns the root hash of reporter's log at size (the empty tree's hash for 0).
func treeRoot(tx *bbolt.Tx, reporter string, size uint64) ([]byte, error) {
	if size == 0 {
		return hasher.EmptyRoot(), nil
	}
	r, err := treeRange(tx, reporter, size)
	if err != nil {
		return nil, err
	}
	return r.GetRootHash(nil)
}

// appendLeaf appends the event recorded under seq to its reporter's log. The transaction must be
// read-write.
func appendLeaf(tx *bbolt.Tx, seq uint64, ev *coordinationv1.LedgerEvent) error {
	reporter := ev.GetReporterRegion()
	data, err := ledgerclient.LeafData(ev)
	if err != nil {
		return err
	}
	size := treeSize(tx, reporter)
	r, err := treeRange(tx, reporter, size)
	if err != nil {
		return err
	}
	nodes := tx.Bucket(treeNodes)
	var putErr error
	err = r.Append(hasher.HashLeaf(data), func(id compact.NodeID, h []byte) {
		if putErr == nil {
			putErr = nodes.Put(treeNodeKey(reporter, id), bytes.Clone(h))
		}
	})
	if err != nil {
		return err
	}
	if putErr != nil {
		return putErr
	}
	if err := tx.Bucket(treeLeaves).Put(treeLeafKey(reporter, size), store.Uint64Key(seq)); err != nil {
		return err
	}
	if err := tx.Bucket(treeSeqs).Put(store.Uint64Key(seq), store.Uint64Key(size)); err != nil {
		return err
	}
	return tx.Bucket(treeSizes).Put([]byte(reporter), store.Uint64Key(size+1))
}

// leafOf returns the leaf index of the event recorded under seq.
func leafOf(tx *bbolt.Tx, seq uint64) (uint64, bool) {
	v := tx.Bucket(treeSeqs).Get(store.Uint64Key(seq))
	if len(v) != 8 {
		return 0, false
	}
	return store.KeyUint64(v), true
}

// leafSeq returns the sequence number of the event of reporter's leaf index.
func leafSeq(tx *bbolt.Tx, reporter string, index uint64) (uint64, bool) {
	v := tx.Bucket(treeLeaves).Get(treeLeafKey(reporter, index))
	if len(v) != 8 {
		return 0, false
	}
	return store.KeyUint64(v), true
}

// inclusionProof returns the leaf hash of index and its inclusion proof in reporter's log at size.
func inclusionProof(tx *bbolt.Tx, reporter string, index, size uint64) (leaf []byte, path [][]byte, err error) {
	if index >= size || size > treeSize(tx, reporter) {
		return nil, nil, fmt.Errorf("leaf %d not in the log of %s of size %d", index, reporter, size)
	}
	leaf, err = treeNode(tx, reporter, compact.NewNodeID(0, index))
	if err != nil {
		return nil, nil, err
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, nil, err
	}
	hashes, err := treeNodesOf(tx, reporter, nodes.IDs)
	if err != nil {
		return nil, nil, err
	}
	path, err = nodes.Rehash(hashes, hasher.HashChildren)
	return leaf, path, err
}

// consistencyProof returns the consistency proof of reporter's log from size1 to size2.
func consistencyProof(tx *bbolt.Tx, reporter string, size1, size2 uint64) ([][]byte, error) {
	if size1 > size2 || size2 > treeSize(tx, reporter) {
		return nil, fmt.Errorf("sizes %d to %d not in the log of %s", size1, size2, reporter)
	}
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, err
	}
	hashes, err := treeNodesOf(tx, reporter, nodes.IDs)
	if err != nil {
		return nil, err
	}
	return nodes.Rehash(hashes, hasher.HashChildren)
}

// BuildTrees builds every reporter's log from the stored events in the order recorded
// (coordination schema version 8), for a file written before the verifiable ledger.
func BuildTrees(tx *bbolt.Tx) error {
	for _, name := range TreeBuckets {
		if tx.Bucket(name) != nil {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		if _, err := tx.CreateBucket(name); err != nil {
			return err
		}
	}
	if tx.Bucket(events.Name()) == nil {
		return nil
	}
	type rec struct {
		seq uint64
		ev  *coordinationv1.LedgerEvent
	}
	var all []rec
	err := events.Scan(tx, store.Range{}, func(k []byte, ev *coordinationv1.LedgerEvent) (bool, error) {
		all = append(all, rec{store.KeyUint64(k), ev})
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, r := range all {
		if err := appendLeaf(tx, r.seq, r.ev); err != nil {
			return err
		}
	}
	return nil
}
