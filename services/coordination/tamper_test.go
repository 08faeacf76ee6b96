package coordination

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/coordination/ledger"
	"github.com/eastwest/labourlink/services/coordination/ledgerclient"
)

// TestLedgerTamperingDetected reports events of Guizhou (520000) and Guangdong (440000), keeps
// what the ledger acknowledged (verified inclusion proofs), stops the service, changes or deletes
// one of Guizhou's events in the bbolt file with bbolt directly, and restarts: Guizhou's
// verification names that event, Guangdong's finds nothing, and the ledger still takes reports.
func TestLedgerTamperingDetected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		want   string // how the difference starts
		tamper func(b *bbolt.Bucket, key []byte) error
	}{
		{"changed", "changed", func(b *bbolt.Bucket, key []byte) error {
			e := &coordinationv1.LedgerEvent{}
			if err := proto.Unmarshal(b.Get(key), e); err != nil {
				return err
			}
			e.WorkerId = "520000-W9999999999"
			v, err := proto.Marshal(e)
			if err != nil {
				return err
			}
			return b.Put(key, v)
		}},
		{"deleted", "missing", func(b *bbolt.Bucket, key []byte) error { return b.Delete(key) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			key, err := ledger.LoadOrCreateKey(filepath.Join(dir, ledger.KeyFileName))
			if err != nil {
				t.Fatal(err)
			}
			lg := zaptest.NewLogger(t)
			cfg := Config{LoadDefaultPairings: true, LedgerKey: key}
			h := newHarness(t, dir, lg, cfg, t0)
			pub, err := h.ledger.GetLedgerPublicKey(ctxT(t), &coordinationv1.GetLedgerPublicKeyRequest{})
			if err != nil {
				t.Fatal(err)
			}
			var reported []*coordinationv1.LedgerEvent
			for i := range 3 {
				w := fmt.Sprintf("520000-W%010d", i+1)
				reported = append(reported, ev(fmt.Sprintf("520000-dep-%d", i), departed, "520000-B1", w, t0),
					ev(fmt.Sprintf("440000-arr-%d", i), arrived, "520000-B1", w, t0.Add(30*60e9)))
			}
			acks := map[string][]ledgerclient.Acknowledged{}
			kept := map[string]ledgerclient.Checkpoint{}
			for _, e := range reported {
				resp := h.report(t, e)
				cp, err := ledgerclient.VerifyCheckpoint(pub.GetPublicKey(), e.GetReporterRegion(), resp.GetCheckpoints()[0])
				if err != nil {
					t.Fatal(err)
				}
				in := resp.GetInclusions()[0]
				if err := ledgerclient.VerifyInclusion(cp, e, in); err != nil {
					t.Fatal(err)
				}
				// A proof for another event, or one byte changed, is refused.
				other := proto.Clone(e).(*coordinationv1.LedgerEvent)
				other.WorkerId += "0"
				if ledgerclient.VerifyInclusion(cp, other, in) == nil {
					t.Fatal("inclusion proof accepted for another event")
				}
				if len(in.GetProof()) > 0 {
					bad := proto.Clone(in).(*coordinationv1.LeafInclusion)
					bad.Proof[0][0] ^= 1
					if ledgerclient.VerifyInclusion(cp, e, bad) == nil {
						t.Fatal("tampered inclusion proof accepted")
					}
				}
				r := e.GetReporterRegion()
				acks[r] = append(acks[r], ledgerclient.Acknowledged{EventID: e.GetEventId(), LeafIndex: uint64(in.GetLeafIndex()), LeafHash: in.GetLeafHash()})
				kept[r] = cp
			}
			h.close()

			raw, err := bbolt.Open(filepath.Join(dir, "coordination.db"), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			const victim = "520000-dep-1"
			err = raw.Update(func(tx *bbolt.Tx) error {
				seq := tx.Bucket([]byte("ledgerEventIDs")).Get([]byte(victim))
				return tc.tamper(tx.Bucket([]byte("ledgerEvents")), append([]byte(nil), seq...))
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := raw.Close(); err != nil {
				t.Fatal(err)
			}

			h = newHarness(t, dir, lg, cfg, t0)
			defer h.close()
			for _, r := range []string{"520000", "440000"} {
				k := kept[r]
				diffs, err := ledgerclient.VerifyHistory(ctxT(t), h.ledger, pub.GetPublicKey(), r, &k, acks[r], nil)
				if err != nil {
					t.Fatalf("%s: %v", r, err)
				}
				switch {
				case r == "440000" && len(diffs) != 0:
					t.Errorf("Guangdong's facts were not touched, got differences %v", diffs)
				case r == "520000" && (len(diffs) != 1 || diffs[0].EventID != victim || diffs[0].LeafIndex != 1 || !strings.HasPrefix(diffs[0].Problem, tc.want)):
					t.Errorf("Guizhou: want one difference naming %s at leaf 1 (%s), got %+v", victim, tc.name, diffs)
				}
			}
			// The rest keeps working.
			h.report(t, ev("520000-dep-9", departed, "520000-B2", "520000-W0000000009", t0))
		})
	}
}
