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
// nodes of the compact range [0, size). All of it goes through logs, which keeps what one
// transaction read and wrote.
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

// logs reads and appends to the reporters' logs in one transaction. It keeps every node it read
// or wrote and, once a reporter's log is appended to, that log's compact range: a report that
// appends a thousand leaves and proves each reads each stored node at most once, and writes each
// reporter's size once (flush, before the transaction commits).
type logs struct {
	tx    *bbolt.Tx
	nodes map[logNode][]byte
	open  map[string]*compact.Range // the logs appended to in this transaction: [0, size)
}

// logNode names a node of a reporter's log.
type logNode struct {
	reporter string
	id       compact.NodeID
}

// newLogs returns the logs as they are in tx.
func newLogs(tx *bbolt.Tx) *logs {
	return &logs{tx: tx, nodes: map[logNode][]byte{}, open: map[string]*compact.Range{}}
}

// size returns the size of reporter's log.
func (g *logs) size(reporter string) uint64 {
	if r, ok := g.open[reporter]; ok {
		return r.End()
	}
	return treeSize(g.tx, reporter)
}

// node returns the hash of node id of reporter's log.
func (g *logs) node(reporter string, id compact.NodeID) ([]byte, error) {
	k := logNode{reporter, id}
	if h, ok := g.nodes[k]; ok {
		return h, nil
	}
	h, err := treeNode(g.tx, reporter, id)
	if err == nil {
		g.nodes[k] = h
	}
	return h, err
}

// nodesOf returns the hashes of ids (a new slice: proof.Nodes.Rehash rewrites it).
func (g *logs) nodesOf(reporter string, ids []compact.NodeID) ([][]byte, error) {
	out := make([][]byte, len(ids))
	for i, id := range ids {
		h, err := g.node(reporter, id)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

// rangeOf returns the compact range [0, size) of reporter's log.
func (g *logs) rangeOf(reporter string, size uint64) (*compact.Range, error) {
	hashes, err := g.nodesOf(reporter, compact.RangeNodes(0, size, nil))
	if err != nil {
		return nil, err
	}
	return rangeFactory.NewRange(0, size, hashes)
}

// root returns the root hash of reporter's log at size (the empty tree's hash for 0).
func (g *logs) root(reporter string, size uint64) ([]byte, error) {
	if size == 0 {
		return hasher.EmptyRoot(), nil
	}
	r, ok := g.open[reporter]
	if !ok || r.End() != size {
		var err error
		if r, err = g.rangeOf(reporter, size); err != nil {
			return nil, err
		}
	}
	return r.GetRootHash(nil)
}

// append appends the event recorded under seq to its reporter's log and returns its leaf index.
// The transaction must be read-write, and flush must follow before it commits.
func (g *logs) append(seq uint64, ev *coordinationv1.LedgerEvent) (uint64, error) {
	reporter := ev.GetReporterRegion()
	data, err := ledgerclient.LeafData(ev)
	if err != nil {
		return 0, err
	}
	r, ok := g.open[reporter]
	if !ok {
		if r, err = g.rangeOf(reporter, treeSize(g.tx, reporter)); err != nil {
			return 0, err
		}
		g.open[reporter] = r
	}
	index := r.End()
	nodes := g.tx.Bucket(treeNodes)
	var putErr error
	err = r.Append(hasher.HashLeaf(data), func(id compact.NodeID, h []byte) {
		h = bytes.Clone(h)
		g.nodes[logNode{reporter, id}] = h
		if putErr == nil {
			putErr = nodes.Put(treeNodeKey(reporter, id), h)
		}
	})
	if err != nil {
		return 0, err
	}
	if putErr != nil {
		return 0, putErr
	}
	if err := g.tx.Bucket(treeLeaves).Put(treeLeafKey(reporter, index), store.Uint64Key(seq)); err != nil {
		return 0, err
	}
	return index, g.tx.Bucket(treeSeqs).Put(store.Uint64Key(seq), store.Uint64Key(index))
}

// flush writes the size of every log appended to.
func (g *logs) flush() error {
	sizes := g.tx.Bucket(treeSizes)
	for reporter, r := range g.open {
		if err := sizes.Put([]byte(reporter), store.Uint64Key(r.End())); err != nil {
			return err
		}
	}
	return nil
}

// inclusion returns the leaf hash of index and its inclusion proof in reporter's log at size.
func (g *logs) inclusion(reporter string, index, size uint64) (leaf []byte, path [][]byte, err error) {
	if index >= size || size > g.size(reporter) {
		return nil, nil, fmt.Errorf("leaf %d not in the log of %s of size %d", index, reporter, size)
	}
	leaf, err = g.node(reporter, compact.NewNodeID(0, index))
	if err != nil {
		return nil, nil, err
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, nil, err
	}
	hashes, err := g.nodesOf(reporter, nodes.IDs)
	if err != nil {
		return nil, nil, err
	}
	path, err = nodes.Rehash(hashes, hasher.HashChildren)
	return leaf, path, err
}

// consistency returns the consistency proof of reporter's log from size1 to size2.
func (g *logs) consistency(reporter string, size1, size2 uint64) ([][]byte, error) {
	if size1 > size2 || size2 > g.size(reporter) {
		return nil, fmt.Errorf("sizes %d to %d not in the log of %s", size1, size2, reporter)
	}
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, err
	}
	hashes, err := g.nodesOf(reporter, nodes.IDs)
	if err != nil {
		return nil, err
	}
	return nodes.Rehash(hashes, hasher.HashChildren)
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
	g := newLogs(tx)
	for i, r := range all {
		if _, err := g.append(r.seq, r.ev); err != nil {
			return err
		}
		if (i+1)%buildTreesEvery == 0 {
			// The sizes written and what g keeps let go: memory holds the nodes of a part of
			// the ledger, not of all of it.
			if err := g.flush(); err != nil {
				return err
			}
			g = newLogs(tx)
		}
	}
	return g.flush()
}

// buildTreesEvery is how many leaves BuildTrees appends between two flushes.
var buildTreesEvery = 100_000
