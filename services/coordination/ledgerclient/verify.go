package ledgerclient

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
)

// rangeFactory makes the RFC 6962 compact ranges of the ledger's logs.
var rangeFactory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// Checkpoint is a checkpoint whose signature was verified.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   []byte
}

// VerifyCheckpoint checks cp's signed note with the ledger's public key (note verifier key) and
// that it is of reporter's log, and returns what the note says (never the unsigned fields).
func VerifyCheckpoint(publicKey, reporter string, cp *coordinationv1.LedgerCheckpoint) (Checkpoint, error) {
	v, err := note.NewVerifier(publicKey)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("ledger public key: %w", err)
	}
	c, _, _, err := log.ParseCheckpoint([]byte(cp.GetSignedNote()), "labourlink/ledger/"+reporter, v)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint of %s: %w", reporter, err)
	}
	return Checkpoint{Origin: c.Origin, Size: c.Size, Root: c.Hash}, nil
}

// VerifyInclusion checks that the leaf of ev is at in.leaf_index in the checkpoint's tree.
func VerifyInclusion(cp Checkpoint, ev *coordinationv1.LedgerEvent, in *coordinationv1.LeafInclusion) error {
	leaf, err := LeafHash(ev)
	if err != nil {
		return err
	}
	if !bytes.Equal(leaf, in.GetLeafHash()) {
		return fmt.Errorf("event %s: the ledger's leaf %d is not this event", ev.GetEventId(), in.GetLeafIndex())
	}
	if uint64(in.GetTreeSize()) != cp.Size {
		return fmt.Errorf("event %s: proof for tree size %d, checkpoint of size %d", ev.GetEventId(), in.GetTreeSize(), cp.Size)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(in.GetLeafIndex()), cp.Size, leaf, in.GetProof(), cp.Root); err != nil {
		return fmt.Errorf("event %s: inclusion proof: %w", ev.GetEventId(), err)
	}
	return nil
}

// RangeLeaves returns the leaf hashes of a leaf range's events, in leaf order: batch holds the
// events of the request the range answers (indexes are into it), all of reporter.
func RangeLeaves(batch []*coordinationv1.LedgerEvent, reporter string, r *coordinationv1.LeafRange) ([][]byte, error) {
	leaves := make([][]byte, 0, len(r.GetIndexes()))
	for j, i := range r.GetIndexes() {
		if i < 0 || int(i) >= len(batch) || batch[i].GetReporterRegion() != reporter {
			return nil, fmt.Errorf("leaf %d: the range names event %d of the report, which is not one of %s's", r.GetFirstLeafIndex()+int64(j), i, reporter)
		}
		leaf, err := LeafHash(batch[i])
		if err != nil {
			return nil, err
		}
		leaves = append(leaves, leaf)
	}
	return leaves, nil
}

// RangeRoots returns the root of the log before a leaf range (its compact range [0,
// first_leaf_index) composed) and after it (with leaves, the range's leaf hashes in order,
// appended).
func RangeRoots(r *coordinationv1.LeafRange, leaves [][]byte) (before, after []byte, err error) {
	first := uint64(max(r.GetFirstLeafIndex(), 0))
	if first+uint64(len(leaves)) != uint64(r.GetTreeSize()) {
		return nil, nil, fmt.Errorf("a range of %d leaves from %d for a tree of size %d", len(leaves), first, r.GetTreeSize())
	}
	cr, err := rangeFactory.NewRange(0, first, slices.Clone(r.GetLeft()))
	if err != nil {
		return nil, nil, fmt.Errorf("the compact range before leaf %d: %w", first, err)
	}
	before = rfc6962.DefaultHasher.EmptyRoot()
	if first > 0 {
		if before, err = cr.GetRootHash(nil); err != nil {
			return nil, nil, err
		}
	}
	for _, leaf := range leaves {
		if err := cr.Append(leaf, nil); err != nil {
			return nil, nil, err
		}
	}
	after = rfc6962.DefaultHasher.EmptyRoot()
	if cr.End() > 0 {
		if after, err = cr.GetRootHash(nil); err != nil {
			return nil, nil, err
		}
	}
	return before, after, nil
}

// VerifyRange checks that leaves (the leaf hashes of a range's events, in leaf order) are the
// leaves from r.first_leaf_index to the end of the checkpoint's tree.
func VerifyRange(cp Checkpoint, r *coordinationv1.LeafRange, leaves [][]byte) error {
	if uint64(r.GetTreeSize()) != cp.Size {
		return fmt.Errorf("range proof for tree size %d, checkpoint of size %d", r.GetTreeSize(), cp.Size)
	}
	_, after, err := RangeRoots(r, leaves)
	if err != nil {
		return err
	}
	if !bytes.Equal(after, cp.Root) {
		return fmt.Errorf("the leaves %d to %d with the range's compact range do not make the checkpoint's root", r.GetFirstLeafIndex(), r.GetTreeSize()-1)
	}
	return nil
}

// VerifyConsistency checks that newer extends older (RFC 6962 consistency proof).
func VerifyConsistency(older, newer Checkpoint, path [][]byte) error {
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, older.Size, newer.Size, path, older.Root, newer.Root); err != nil {
		return fmt.Errorf("the ledger's log of size %d does not extend the one of size %d it signed before: %w", newer.Size, older.Size, err)
	}
	return nil
}

// Acknowledged is one event the ledger acknowledged: its leaf index and leaf hash.
type Acknowledged struct {
	EventID   string
	LeafIndex uint64
	LeafHash  []byte
}

// Difference is an acknowledged event the ledger no longer holds as acknowledged.
type Difference struct {
	EventID   string
	LeafIndex uint64
	// Problem says what differs ("changed", "missing").
	Problem string
}

// VerifyHistory checks reporter's whole log against what the ledger acknowledged: the current
// checkpoint's signature, its consistency with the newest checkpoint kept (when given), every
// leaf's event against its leaf hash, and every acknowledged event in its leaf. It returns the
// acknowledged events that differ; progress (if set) is called after each page.
func VerifyHistory(ctx context.Context, c coordinationv1.LedgerServiceClient, publicKey, reporter string, kept *Checkpoint, acks []Acknowledged, progress func(done, total uint64)) ([]Difference, error) {
	resp, err := c.GetLedgerCheckpoint(ctx, &coordinationv1.GetLedgerCheckpointRequest{ReporterRegion: reporter})
	if err != nil {
		return nil, err
	}
	cur, err := VerifyCheckpoint(publicKey, reporter, resp.GetCheckpoint())
	if err != nil {
		return nil, err
	}
	var diffs []Difference
	if kept != nil && kept.Size > 0 {
		if cur.Size < kept.Size {
			return nil, fmt.Errorf("the ledger's log of %s has %d leaves, fewer than the %d it signed before", reporter, cur.Size, kept.Size)
		}
		p, err := c.GetConsistencyProof(ctx, &coordinationv1.GetConsistencyProofRequest{ReporterRegion: reporter, FromSize: int64(kept.Size), ToSize: int64(cur.Size)})
		if err != nil {
			return nil, err
		}
		if err := VerifyConsistency(*kept, cur, p.GetProof()); err != nil {
			return nil, err
		}
	}
	byIndex := map[uint64]Acknowledged{}
	for _, a := range acks {
		byIndex[a.LeafIndex] = a
	}
	seen := map[uint64]bool{}
	for start := int64(0); ; {
		page, err := c.ListLedgerLeaves(ctx, &coordinationv1.ListLedgerLeavesRequest{ReporterRegion: reporter, StartIndex: start, PageSize: 1000})
		if err != nil {
			return nil, err
		}
		for _, l := range page.GetLeaves() {
			i := uint64(l.GetLeafIndex())
			if i >= cur.Size {
				continue
			}
			seen[i] = true
			a, acked := byIndex[i]
			switch {
			case acked && !bytes.Equal(a.LeafHash, l.GetLeafHash()):
				diffs = append(diffs, Difference{a.EventID, i, "changed: the tree's leaf is not the one acknowledged"})
			case l.GetEvent() == nil:
				diffs = append(diffs, Difference{a.EventID, i, "missing: the ledger has no event for the leaf"})
			default:
				h, err := LeafHash(l.GetEvent())
				if err != nil {
					return nil, err
				}
				if !bytes.Equal(h, l.GetLeafHash()) || (acked && l.GetEvent().GetEventId() != a.EventID) {
					id := a.EventID
					if id == "" {
						id = l.GetEvent().GetEventId()
					}
					diffs = append(diffs, Difference{id, i, "changed: the ledger's event is not the one acknowledged"})
				}
			}
		}
		if progress != nil {
			progress(uint64(start)+uint64(len(page.GetLeaves())), cur.Size)
		}
		if page.GetNextStartIndex() == 0 {
			break
		}
		start = page.GetNextStartIndex()
	}
	for _, a := range acks {
		if !seen[a.LeafIndex] {
			diffs = append(diffs, Difference{a.EventID, a.LeafIndex, "missing: the ledger's log has no such leaf"})
		}
	}
	return diffs, nil
}
