package outbox

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestBackoff(t *testing.T) {
	r := &Relay{opts: Options{MinBackoff: 200 * time.Millisecond, MaxBackoff: 30 * time.Second}}
	tests := []struct {
		failures int
		base     time.Duration // before jitter
	}{
		{1, 200 * time.Millisecond},
		{2, 400 * time.Millisecond},
		{3, 800 * time.Millisecond},
		{8, 25600 * time.Millisecond},
		{9, 30 * time.Second},
		{1000, 30 * time.Second},
	}
	for _, tt := range tests {
		for range 100 {
			got := r.backoff(tt.failures)
			if got < tt.base/2 || got > tt.base {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", tt.failures, got, tt.base/2, tt.base)
			}
		}
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	payload, err := anypb.New(wrapperspb.String("departed"))
	if err != nil {
		t.Fatal(err)
	}
	for _, attempts := range []uint32{0, 1, 1<<32 - 1} {
		in := envelope{destination: "coordination", payload: payload, createdAt: time.Unix(1700000000, 5).UTC(), attempts: attempts}
		v, err := encodeEnvelope(in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := decodeEnvelope(v)
		if err != nil {
			t.Fatal(err)
		}
		if out.destination != in.destination || !proto.Equal(out.payload, in.payload) ||
			!out.createdAt.Equal(in.createdAt) || out.attempts != in.attempts {
			t.Errorf("round trip of %+v gave %+v", in, out)
		}
	}
	for _, bad := range [][]byte{
		{0x0a, 0x05, 'a'}, // truncated destination
		{0x0a, 0x01, 'a'}, // no payload
		{0xff},            // bad tag
	} {
		if _, err := decodeEnvelope(bad); err == nil {
			t.Errorf("decodeEnvelope(%x) succeeded", bad)
		}
	}
}
