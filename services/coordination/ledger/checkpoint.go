package ledger

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/coordination/check"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/paging"
	"github.com/eastwest/labourlink/services/platform/store"
)

// KeyName is the name of the ledger's signing key in its notes.
const KeyName = "labourlink-ledger"

// KeyFileName is the key file's name in the data folder when no -ledger-key is given.
const KeyFileName = "ledger.key"

// Origin is the checkpoint origin (the log's name) of reporter's log.
func Origin(reporter string) string { return "labourlink/ledger/" + reporter }

// Key signs the ledger's checkpoints: an ed25519 key in the golang.org/x/mod/sumdb/note format.
type Key struct {
	signer   note.Signer
	verifier string
}

// NewKey returns a new random key (tests, and a data folder without one).
func NewKey() (*Key, error) {
	skey, _, err := note.GenerateKey(rand.Reader, KeyName)
	if err != nil {
		return nil, err
	}
	return ParseKey(skey)
}

// ParseKey returns the key of a note private key ("PRIVATE+KEY+name+hash+key").
func ParseKey(skey string) (*Key, error) {
	s, err := note.NewSigner(strings.TrimSpace(skey))
	if err != nil {
		return nil, fmt.Errorf("ledger key: %w", err)
	}
	// The verifier key of a note signer: name+hash+0x01 then the public key, from the private one.
	vkey, err := verifierOf(strings.TrimSpace(skey))
	if err != nil {
		return nil, err
	}
	return &Key{signer: s, verifier: vkey}, nil
}

// LoadOrCreateKey reads the key file at path, creating it (mode 0600) with a new key when it does
// not exist.
func LoadOrCreateKey(path string) (*Key, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		skey, _, gerr := note.GenerateKey(rand.Reader, KeyName)
		if gerr != nil {
			return nil, gerr
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create ledger key: %w", err)
		}
		if _, err := f.WriteString(skey + "\n"); err != nil {
			f.Close()
			return nil, err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, err
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		return ParseKey(skey)
	}
	if err != nil {
		return nil, fmt.Errorf("read ledger key: %w", err)
	}
	return ParseKey(string(b))
}

// PublicKey is the verifier key (note format) of k.
func (k *Key) PublicKey() string { return k.verifier }

// sign returns the signed checkpoint of reporter's log at size, root, signed at now.
func (k *Key) sign(reporter string, size uint64, root []byte, now time.Time) (*coordinationv1.LedgerCheckpoint, error) {
	text := log.Checkpoint{Origin: Origin(reporter), Size: size, Hash: root}.Marshal()
	text = append(text, "time "+now.UTC().Format(time.RFC3339Nano)+"\n"...)
	signed, err := note.Sign(&note.Note{Text: string(text)}, k.signer)
	if err != nil {
		return nil, err
	}
	return &coordinationv1.LedgerCheckpoint{
		ReporterRegion: reporter, Origin: Origin(reporter), TreeSize: int64(size), RootHash: root,
		Time: timestamppb.New(now), SignedNote: string(signed),
	}, nil
}

// key returns the ledger's signing key: Config.Key, or one made for this process.
func (l *Ledger) key() *Key {
	l.keyOnce.Do(func() {
		l.signKey = l.cfg.Key
		if l.signKey == nil {
			k, err := NewKey()
			if err != nil {
				panic(fmt.Sprintf("ledger: make a signing key: %v", err)) // crypto/rand never fails
			}
			l.signKey = k
		}
	})
	return l.signKey
}

// checkpoint returns the signed checkpoint of reporter's log as it is in g.
func (l *Ledger) checkpoint(g *logs, reporter string, now time.Time) (*coordinationv1.LedgerCheckpoint, error) {
	size := g.size(reporter)
	root, err := g.root(reporter, size)
	if err != nil {
		return nil, err
	}
	return l.key().sign(reporter, size, root, now)
}

// proveReport fills resp's checkpoints and proofs for the events of req not refused, in the
// report's transaction (after the events were added): an inclusion per event, or with
// PROOF_FORM_RANGES a leaf range per reporter for the events recorded now (they are the last
// leaves of its log) and an inclusion per duplicate. added has the leaf of each event recorded by
// this report, by its index in req; the others (duplicates) are looked up.
func (l *Ledger) proveReport(g *logs, req *coordinationv1.ReportEventsRequest, resp *coordinationv1.ReportEventsResponse, added map[int]leafAt, now time.Time) error {
	refused := map[int32]bool{}
	for _, r := range resp.GetRefusals() {
		refused[r.GetIndex()] = true
	}
	resp.Checkpoints, resp.Inclusions, resp.Ranges = nil, nil, nil
	sizes := map[string]uint64{}
	sizeOf := func(reporter string) (uint64, error) {
		if size, ok := sizes[reporter]; ok {
			return size, nil
		}
		cp, err := l.checkpoint(g, reporter, now)
		if err != nil {
			return 0, err
		}
		resp.Checkpoints = append(resp.Checkpoints, cp)
		sizes[reporter] = uint64(cp.GetTreeSize())
		return sizes[reporter], nil
	}
	ranges := map[string]*coordinationv1.LeafRange{}
	for i, ev := range req.GetEvents() {
		if refused[int32(i)] {
			continue
		}
		at, ok := added[i]
		if ok && req.GetProofForm() == coordinationv1.ProofForm_PROOF_FORM_RANGES {
			if _, err := sizeOf(at.reporter); err != nil {
				return err
			}
			r := ranges[at.reporter]
			if r == nil {
				r = &coordinationv1.LeafRange{ReporterRegion: at.reporter, FirstLeafIndex: int64(at.index)}
				ranges[at.reporter] = r
				resp.Ranges = append(resp.Ranges, r)
			}
			if want := uint64(r.GetFirstLeafIndex()) + uint64(len(r.GetIndexes())); at.index != want {
				return fmt.Errorf("ledger: event %d of the report is at leaf %d of %s, not %d: its leaves are not consecutive", i, at.index, at.reporter, want)
			}
			r.Indexes = append(r.Indexes, int32(i))
			continue
		}
		if !ok {
			var err error
			if at, ok, err = recordedLeaf(g.tx, ev.GetEventId()); err != nil {
				return err
			} else if !ok {
				continue
			}
		}
		size, err := sizeOf(at.reporter)
		if err != nil {
			return err
		}
		leaf, path, err := g.inclusion(at.reporter, at.index, size)
		if err != nil {
			return err
		}
		resp.Inclusions = append(resp.Inclusions, &coordinationv1.LeafInclusion{
			Index: int32(i), EventId: ev.GetEventId(), LeafIndex: int64(at.index), LeafHash: leaf,
			TreeSize: int64(size), Proof: path,
		})
	}
	for _, r := range resp.Ranges {
		first, size := uint64(r.GetFirstLeafIndex()), sizes[r.GetReporterRegion()]
		if first+uint64(len(r.GetIndexes())) != size {
			return fmt.Errorf("ledger: the report's leaves of %s end at %d, not at its size %d", r.GetReporterRegion(), first+uint64(len(r.GetIndexes())), size)
		}
		left, err := g.nodesOf(r.GetReporterRegion(), compact.RangeNodes(0, first, nil))
		if err != nil {
			return err
		}
		r.TreeSize, r.Left = int64(size), left
	}
	return nil
}

// leafAt is the leaf of a recorded event: its reporter's log and index there.
type leafAt struct {
	reporter string
	index    uint64
}

// recordedLeaf returns the leaf of the event recorded with eventID.
func recordedLeaf(tx *bbolt.Tx, eventID string) (leafAt, bool, error) {
	seq, ok := eventSeq(tx, eventID)
	if !ok {
		return leafAt{}, false, nil
	}
	index, ok := leafOf(tx, seq)
	if !ok {
		return leafAt{}, false, nil
	}
	stored, err := event(tx, seq)
	if err != nil {
		return leafAt{}, false, err
	}
	return leafAt{stored.GetReporterRegion(), index}, true, nil
}

// validateTreeRequest checks the verifiable ledger's requests (ValidateRequest); ok is false for
// other requests.
func (x *LedgerServer) validateTreeRequest(v *apierror.Violations, req any) bool {
	switch r := req.(type) {
	case *coordinationv1.GetLedgerCheckpointRequest:
		check.Province(v, x.l.cfg.Regions, "reporter_region", r.GetReporterRegion(), true)
	case *coordinationv1.GetInclusionProofRequest:
		check.Province(v, x.l.cfg.Regions, "reporter_region", r.GetReporterRegion(), true)
		if r.GetLeafIndex() < 0 {
			v.Add("leaf_index", "must not be negative")
		}
		if r.GetEventId() != "" {
			checkID(v, "event_id", r.GetEventId(), store.MaxClientIDLen)
			if r.GetLeafIndex() != 0 {
				v.Add("leaf_index", "give the leaf index or the event id, not both")
			}
		}
		if r.GetTreeSize() < 0 {
			v.Add("tree_size", "must not be negative")
		} else if r.GetTreeSize() != 0 && r.GetEventId() == "" && r.GetTreeSize() <= r.GetLeafIndex() {
			v.Add("tree_size", "must be above leaf_index (or 0 for the current size)")
		}
	case *coordinationv1.GetConsistencyProofRequest:
		check.Province(v, x.l.cfg.Regions, "reporter_region", r.GetReporterRegion(), true)
		if r.GetFromSize() < 1 {
			v.Add("from_size", "must be at least 1")
		}
		if r.GetToSize() < r.GetFromSize() {
			v.Add("to_size", "must be at least from_size")
		}
	case *coordinationv1.ListLedgerLeavesRequest:
		check.Province(v, x.l.cfg.Regions, "reporter_region", r.GetReporterRegion(), true)
		if r.GetStartIndex() < 0 {
			v.Add("start_index", "must not be negative")
		}
		check.PageSize.Check(v, r.GetPageSize())
		if r.GetPageToken() != "" {
			leavesListing(r.GetReporterRegion()).Check(v, r.GetPageToken())
			if r.GetStartIndex() != 0 {
				v.Add("start_index", "give the start index or the page token, not both")
			}
		}
	case *coordinationv1.GetLedgerPublicKeyRequest:
	default:
		return false
	}
	return true
}

// GetLedgerCheckpoint returns a reporter's current signed checkpoint.
func (x *LedgerServer) GetLedgerCheckpoint(ctx context.Context, req *coordinationv1.GetLedgerCheckpointRequest) (*coordinationv1.GetLedgerCheckpointResponse, error) {
	var cp *coordinationv1.LedgerCheckpoint
	err := x.l.db.View(func(tx *bbolt.Tx) (err error) {
		cp, err = x.l.checkpoint(newLogs(tx), req.GetReporterRegion(), x.l.cfg.Now())
		return err
	})
	if err != nil {
		return nil, err
	}
	return &coordinationv1.GetLedgerCheckpointResponse{Checkpoint: cp}, nil
}

// GetInclusionProof returns the proof that a reporter's log includes a leaf.
func (x *LedgerServer) GetInclusionProof(ctx context.Context, req *coordinationv1.GetInclusionProofRequest) (*coordinationv1.GetInclusionProofResponse, error) {
	resp := &coordinationv1.GetInclusionProofResponse{}
	reporter := req.GetReporterRegion()
	err := x.l.db.View(func(tx *bbolt.Tx) error {
		g := newLogs(tx)
		index := uint64(req.GetLeafIndex())
		if id := req.GetEventId(); id != "" {
			at, ok, err := recordedLeaf(tx, id)
			if err != nil {
				return err
			}
			if !ok || at.reporter != reporter {
				return apierror.NotFound("the log of %s has no event %s", reporter, id)
			}
			index = at.index
		}
		size := uint64(req.GetTreeSize())
		if size == 0 {
			cp, err := x.l.checkpoint(g, reporter, x.l.cfg.Now())
			if err != nil {
				return err
			}
			resp.Checkpoint, size = cp, uint64(cp.GetTreeSize())
		}
		if have := g.size(reporter); index >= size || size > have {
			return apierror.NotFound("the log of %s has %d leaves: no leaf %d in a tree of size %d", reporter, have, index, size)
		}
		leaf, path, err := g.inclusion(reporter, index, size)
		if err != nil {
			return err
		}
		resp.Inclusion = &coordinationv1.LeafInclusion{EventId: req.GetEventId(), LeafIndex: int64(index), LeafHash: leaf, TreeSize: int64(size), Proof: path}
		if seq, ok := leafSeq(tx, reporter, index); ok && resp.Inclusion.EventId == "" {
			if ev, _, err := events.Get(tx, store.Uint64Key(seq)); err == nil && ev != nil {
				resp.Inclusion.EventId = ev.GetEventId()
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// GetConsistencyProof returns the consistency proof between two sizes of a reporter's log.
func (x *LedgerServer) GetConsistencyProof(ctx context.Context, req *coordinationv1.GetConsistencyProofRequest) (*coordinationv1.GetConsistencyProofResponse, error) {
	var path [][]byte
	reporter := req.GetReporterRegion()
	err := x.l.db.View(func(tx *bbolt.Tx) (err error) {
		if have := treeSize(tx, reporter); uint64(req.GetToSize()) > have {
			return apierror.NotFound("the log of %s has %d leaves, not %d", reporter, have, req.GetToSize())
		}
		path, err = newLogs(tx).consistency(reporter, uint64(req.GetFromSize()), uint64(req.GetToSize()))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &coordinationv1.GetConsistencyProofResponse{Proof: path}, nil
}

// ListLedgerLeaves lists a reporter's leaves from an index, with their events.
func (x *LedgerServer) ListLedgerLeaves(ctx context.Context, req *coordinationv1.ListLedgerLeavesRequest) (*coordinationv1.ListLedgerLeavesResponse, error) {
	resp := &coordinationv1.ListLedgerLeavesResponse{}
	reporter := req.GetReporterRegion()
	n := uint64(check.PageSize.Of(req.GetPageSize()))
	err := x.l.db.View(func(tx *bbolt.Tx) error {
		size := treeSize(tx, reporter)
		resp.TreeSize = int64(size)
		start := uint64(req.GetStartIndex())
		if req.GetPageToken() != "" {
			last, err := leavesListing(reporter).Decode(req.GetPageToken())
			if err != nil {
				return err
			}
			start = store.KeyUint64(last) + 1
		}
		end := min(size, start+n)
		for i := start; i < end; i++ {
			leaf, err := treeNode(tx, reporter, compact.NewNodeID(0, i))
			if err != nil {
				return err
			}
			l := &coordinationv1.LedgerLeaf{LeafIndex: int64(i), LeafHash: leaf}
			if seq, ok := leafSeq(tx, reporter, i); ok {
				ev, found, err := events.Get(tx, store.Uint64Key(seq))
				if err != nil {
					return err
				}
				if found {
					l.Event = ev
				}
			}
			resp.Leaves = append(resp.Leaves, l)
		}
		if end < size {
			resp.NextStartIndex = int64(end)
			resp.NextPageToken = leavesListing(reporter).Token(store.Uint64Key(end - 1))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// leavesListing is what a ListLedgerLeaves page token is bound to: the reporter's log; its key
// is the last leaf index of the page (8 bytes).
func leavesListing(reporter string) paging.Listing {
	return paging.For("ListLedgerLeaves", reporter).Keys(func(k []byte) bool { return len(k) == 8 })
}

// GetLedgerPublicKey returns the key that signs the checkpoints.
func (x *LedgerServer) GetLedgerPublicKey(ctx context.Context, req *coordinationv1.GetLedgerPublicKeyRequest) (*coordinationv1.GetLedgerPublicKeyResponse, error) {
	return &coordinationv1.GetLedgerPublicKeyResponse{PublicKey: x.l.key().PublicKey()}, nil
}

// verifierOf returns the verifier key of a note private key.
func verifierOf(skey string) (string, error) {
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", errors.New("ledger key: not a note private key (PRIVATE+KEY+name+hash+key)")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", errors.New("ledger key: not an ed25519 note private key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[2], pub)
}
