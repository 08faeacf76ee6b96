package ledgerclient

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"pgregory.net/rapid"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
)

// The leaf of an event leaves out its output fields and unknown fields: the event as reported,
// the same event as the ledger recorded it (record time, reporter role) and the same with an
// unknown field all have one leaf, and the reported event is not changed by computing it.
func TestLeafDataLeavesOutOutputFields(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		reported := &coordinationv1.LedgerEvent{
			EventId:         rapid.StringMatching(`[a-z0-9:-]{1,40}`).Draw(t, "id"),
			Kind:            coordinationv1.EventKind(rapid.IntRange(0, 12).Draw(t, "kind")),
			ReporterRegion:  "520000",
			SendingRegion:   "520000",
			ReceivingRegion: rapid.SampledFrom([]string{"440000", "330000"}).Draw(t, "receiving"),
			WorkerId:        rapid.StringMatching(`520000-W[0-9]{10}`).Draw(t, "worker"),
			BatchId:         rapid.StringMatching(`(520000-B[0-9]{1,4})?`).Draw(t, "batch"),
			OccurTime:       &timestamppb.Timestamp{Seconds: rapid.Int64Range(1.7e9, 1.9e9).Draw(t, "seconds"), Nanos: rapid.Int32Range(0, 999_999_999).Draw(t, "nanos")},
			RegisteredPoor:  rapid.Bool().Draw(t, "poor"),
		}
		before := proto.Clone(reported)
		want, err := LeafData(reported)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(before, reported) {
			t.Fatal("LeafData changed the event")
		}
		recorded := proto.Clone(reported).(*coordinationv1.LedgerEvent)
		recorded.RecordTime = timestamppb.Now()
		recorded.ReporterRole = commonv1.RegionRole(rapid.IntRange(1, 2).Draw(t, "role"))
		withUnknown := proto.Clone(reported).(*coordinationv1.LedgerEvent)
		withUnknown.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 999, protowire.VarintType), 7))
		for name, ev := range map[string]*coordinationv1.LedgerEvent{"recorded": recorded, "with an unknown field": withUnknown} {
			got, err := LeafData(ev)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("the %s event has another leaf than the reported one", name)
			}
		}
	})
}
