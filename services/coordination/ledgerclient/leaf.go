package ledgerclient

import (
	"github.com/transparency-dev/merkle/rfc6962"
	"google.golang.org/protobuf/proto"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
)

// LeafData is the leaf of ev in its reporter's log (the verifiable ledger): the deterministic
// protobuf encoding of the event without its output-only fields (record_time, reporter_role)
// and without unknown fields, so that the reporter computes from the event it sent the same
// bytes the ledger computes from the event it recorded.
func LeafData(ev *coordinationv1.LedgerEvent) ([]byte, error) {
	if ev.GetRecordTime() == nil && ev.GetReporterRole() == 0 && len(ev.ProtoReflect().GetUnknown()) == 0 {
		// Nothing to leave out (an event as its reporter sends it): encoded as it is.
		return proto.MarshalOptions{Deterministic: true}.Marshal(ev)
	}
	c := proto.Clone(ev).(*coordinationv1.LedgerEvent)
	c.RecordTime = nil
	c.ReporterRole = 0
	c.ProtoReflect().SetUnknown(nil)
	return proto.MarshalOptions{Deterministic: true}.Marshal(c)
}

// LeafHash is the RFC 6962 leaf hash of ev (LeafData).
func LeafHash(ev *coordinationv1.LedgerEvent) ([]byte, error) {
	data, err := LeafData(ev)
	if err != nil {
		return nil, err
	}
	return rfc6962.DefaultHasher.HashLeaf(data), nil
}
