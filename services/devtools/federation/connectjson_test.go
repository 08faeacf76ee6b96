package federation_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// connectJSON is a grpc.ClientConnInterface that makes every call the way a curl user does on
// the HTTP/JSON listener (docs/http.md): a unary call is a POST of the request as JSON
// (Content-Type application/json, no Connect header), the answer JSON or a Connect error; a
// client stream is one POST of application/connect+json whose body is the envelopes of the
// messages sent (flags byte, 4-byte big-endian length, JSON), the answer one message envelope
// and the end-of-stream envelope. Only net/http and protojson: nothing of gRPC travels.
// Server streams are not needed by the scenario and are refused.
type connectJSON struct {
	base string // http://HOST:PORT
	hc   *http.Client
	// calls counts the HTTP requests made, so that a test can show the scenario went this way.
	calls *atomic.Int64
}

func (c connectJSON) Invoke(ctx context.Context, method string, args, reply any, _ ...grpc.CallOption) error {
	body, err := protojson.Marshal(args.(proto.Message))
	if err != nil {
		return err
	}
	resp, err := c.post(ctx, method, "application/json", body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return status.Error(codes.Unavailable, err.Error())
	}
	if resp.StatusCode != http.StatusOK {
		return connectError(resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("%s: answer of Content-Type %q, want application/json", method, ct)
	}
	return protojson.Unmarshal(b, reply.(proto.Message))
}

func (c connectJSON) post(ctx context.Context, method, contentType string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+method, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	if c.calls != nil {
		c.calls.Add(1)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return resp, nil
}

// connectError turns a Connect error JSON ({"code":"not_found","message":...}) into a gRPC
// status with that code and message.
func connectError(httpStatus int, b []byte) error {
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(b, &e); err != nil || e.Code == "" {
		return status.Errorf(codes.Unknown, "HTTP %d without a Connect error: %.200s", httpStatus, b)
	}
	name := strings.ToUpper(e.Code)
	if name == "CANCELED" {
		name = "CANCELLED"
	}
	var code codes.Code
	if err := code.UnmarshalJSON([]byte(`"` + name + `"`)); err != nil {
		code = codes.Unknown
	}
	return status.Error(code, e.Message)
}

func (c connectJSON) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, _ ...grpc.CallOption) (grpc.ClientStream, error) {
	if desc.ServerStreams {
		return nil, status.Errorf(codes.Unimplemented, "%s: server streams are not made over HTTP/JSON in this test", method)
	}
	return &connectClientStream{c: c, ctx: ctx, method: method}, nil
}

// connectClientStream gathers the messages sent and posts them at CloseSend.
type connectClientStream struct {
	c      connectJSON
	ctx    context.Context
	method string
	body   bytes.Buffer
	resp   *http.Response
	err    error
}

func (s *connectClientStream) Header() (metadata.MD, error) { return nil, nil }
func (s *connectClientStream) Trailer() metadata.MD         { return nil }
func (s *connectClientStream) Context() context.Context     { return s.ctx }

func (s *connectClientStream) SendMsg(m any) error {
	b, err := protojson.Marshal(m.(proto.Message))
	if err != nil {
		return err
	}
	writeEnvelope(&s.body, 0, b)
	return nil
}

func writeEnvelope(w *bytes.Buffer, flags byte, msg []byte) {
	var hdr [5]byte
	hdr[0] = flags
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(msg)))
	w.Write(hdr[:])
	w.Write(msg)
}

func (s *connectClientStream) CloseSend() error {
	if s.resp != nil || s.err != nil {
		return s.err
	}
	s.resp, s.err = s.c.post(s.ctx, s.method, "application/connect+json", s.body.Bytes())
	return s.err
}

// RecvMsg reads the answer's envelopes: the message into m, then the end of stream, whose
// error (if any) is returned.
func (s *connectClientStream) RecvMsg(m any) error {
	if err := s.CloseSend(); err != nil {
		return err
	}
	defer s.resp.Body.Close()
	if s.resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(s.resp.Body)
		return connectError(s.resp.StatusCode, b)
	}
	got := false
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(s.resp.Body, hdr[:]); err != nil {
			return status.Errorf(codes.Unavailable, "%s: the stream ended without its end-of-stream envelope: %v", s.method, err)
		}
		msg := make([]byte, binary.BigEndian.Uint32(hdr[1:]))
		if _, err := io.ReadFull(s.resp.Body, msg); err != nil {
			return status.Errorf(codes.Unavailable, "%s: a short envelope: %v", s.method, err)
		}
		if hdr[0]&0x02 != 0 { // end of stream: {"error": {...}, "metadata": {...}}
			var end struct {
				Error json.RawMessage `json:"error"`
			}
			if err := json.Unmarshal(msg, &end); err != nil {
				return fmt.Errorf("%s: end-of-stream envelope %q: %w", s.method, msg, err)
			}
			if len(end.Error) > 0 {
				return connectError(0, end.Error)
			}
			if !got {
				return status.Errorf(codes.Internal, "%s: the stream ended without an answer", s.method)
			}
			return nil
		}
		if got {
			return status.Errorf(codes.Internal, "%s: a client stream answered twice", s.method)
		}
		if err := protojson.Unmarshal(msg, m.(proto.Message)); err != nil {
			return err
		}
		got = true
	}
}
