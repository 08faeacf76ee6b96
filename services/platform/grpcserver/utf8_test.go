package grpcserver_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/eastwest/labourlink/services/platform/grpcserver"
)

// rawBytes is a request already in wire format.
type rawBytes []byte

// rawCodec is a client codec that sends rawBytes as they are, without the UTF-8 check
// proto.Marshal would make, as a client in another language or a broken one may.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.(rawBytes); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	b, err := proto.Marshal(v.(proto.Message))
	return mem.BufferSlice{mem.SliceBuffer(b)}, err
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return proto.Unmarshal(data.Materialize(), v.(proto.Message))
}

func (rawCodec) Name() string { return "proto" }

// secret is a valid start of a value the server must neither log nor echo.
const secret = "张三丰"

var invalid = secret + "\xff\xfe"

// encodeReq hand-encodes a MutateRequest; rows are (full_name, photo) pairs.
func encodeReq(requestID, value string, rows ...[2]string) rawBytes {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, requestID)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, value)
	for _, r := range rows {
		var row []byte
		row = protowire.AppendTag(row, 1, protowire.BytesType)
		row = protowire.AppendString(row, r[0])
		row = protowire.AppendTag(row, 2, protowire.BytesType)
		row = protowire.AppendString(row, r[1])
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, row)
	}
	return b
}

// forge adds the codec's own record number to a valid request, naming a field.
func forge(b rawBytes) rawBytes {
	rec := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "value")
	out := protowire.AppendTag(append([]byte(nil), b...), protowire.MaxValidNumber, protowire.BytesType)
	return protowire.AppendBytes(out, rec)
}

// Invalid UTF-8 in a string field is refused with INVALID_ARGUMENT naming the field, in unary
// calls and in streamed messages, before the handler (or the service's own validation) sees
// it; bytes fields may hold anything; the value is not logged.
func TestInvalidUTF8IsInvalidArgument(t *testing.T) {
	ok := [2]string{"李四", "\xff\xd8 a jpeg"}
	tests := []struct {
		name       string
		stream     bool
		msgs       []rawBytes
		wantCode   codes.Code
		wantFields []string
	}{
		{"unary top-level field", false, []rawBytes{encodeReq("u1", invalid)}, codes.InvalidArgument, []string{"value"}},
		{"unary nested repeated field", false, []rawBytes{encodeReq("u2", "fine", ok, [2]string{invalid, ""}, [2]string{invalid, ""})},
			codes.InvalidArgument, []string{"rows[1].full_name", "rows[2].full_name"}},
		{"unary request id", false, []rawBytes{encodeReq(invalid, "fine")}, codes.InvalidArgument, []string{"request_id"}},
		{"unary bytes field may hold anything", false, []rawBytes{encodeReq("u3", "fine", ok)}, codes.OK, nil},
		{"unary forged record is dropped", false, []rawBytes{forge(encodeReq("u4", "fine"))}, codes.OK, nil},
		{"stream later message", true, []rawBytes{encodeReq("s1", "a"), encodeReq("", "b", [2]string{invalid, ""})},
			codes.InvalidArgument, []string{"rows[0].full_name"}},
		{"stream first message", true, []rawBytes{encodeReq("s2", invalid)}, codes.InvalidArgument, []string{"value"}},
		{"stream valid", true, []rawBytes{encodeReq("s3", "a"), encodeReq("", "b", ok)}, codes.OK, nil},
	}
	f := start(t, grpcserver.Config{ServiceName: "test"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.logs.TakeAll()
			calls := f.svc.calls.Load()
			var err error
			method := methodDo
			if tt.stream {
				method = methodCollect
				var cs grpc.ClientStream
				cs, err = f.conn.NewStream(t.Context(), &testServiceDesc.Streams[0], methodCollect, grpc.ForceCodecV2(rawCodec{}))
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range tt.msgs {
					if cs.SendMsg(m) != nil {
						break
					}
				}
				if err := cs.CloseSend(); err != nil {
					t.Fatal(err)
				}
				err = cs.RecvMsg(&wrapperspb.StringValue{})
			} else {
				err = f.conn.Invoke(t.Context(), methodDo, tt.msgs[0], &wrapperspb.StringValue{}, grpc.ForceCodecV2(rawCodec{}))
				if called := f.svc.calls.Load() > calls; called != (tt.wantCode == codes.OK) {
					t.Errorf("handler called = %v", called)
				}
			}
			st := status.Convert(err)
			if st.Code() != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", st.Code(), err, tt.wantCode)
			}
			if got := fieldViolations(t, err); fmt.Sprint(got) != fmt.Sprint(tt.wantFields) {
				t.Errorf("field violations %v, want %v", got, tt.wantFields)
			}
			for _, d := range status.Convert(err).Proto().GetDetails() {
				if bytes.Contains(d.GetValue(), []byte(secret)) {
					t.Error("the refusal echoes the field's value")
				}
			}
			if tt.wantCode != codes.OK {
				if want := tt.wantFields[0] + ": is not valid UTF-8"; !strings.Contains(st.Message(), want) {
					t.Errorf("message %q, want it to say %q", st.Message(), want)
				}
			}
			lvl := zapcore.DebugLevel
			if tt.wantCode != codes.OK {
				lvl = zapcore.WarnLevel
			}
			checkLine(t, rpcLines(f.logs), method, tt.wantCode, lvl, "", secret)
		})
	}
}
