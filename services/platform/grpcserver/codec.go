package grpcserver

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/eastwest/labourlink/services/platform/apierror"
)

// A request with a string field that is not valid UTF-8 must be refused with INVALID_ARGUMENT
// naming the field. proto.Unmarshal refuses such a message, and grpc-go turns every codec
// error into INTERNAL ("grpc: failed to unmarshal the received message", rpc_util.go) before
// any interceptor runs; for a unary call the generated handler returns it without calling the
// interceptors at all. So the server's codec (utf8Codec, installed with
// grpc.ForceServerCodecV2) does not fail: when the normal decoding fails, it walks the wire
// bytes along the message's descriptor, finds the string fields that hold invalid UTF-8 (with
// their paths, e.g. `rows[3].full_name`), replaces those strings with valid ones, decodes the
// repaired bytes, and records the paths in the message itself, as an unknown field of a number
// no schema uses (utf8MarkNumber). The validation interceptor (unary and stream) takes the
// record out and refuses the request with a BadRequest field violation "is not valid UTF-8";
// the handler never sees the repaired message, and the field's value is neither logged nor
// echoed.
//
// Why in the message: the finding must get from the codec, which sees no context, to the
// interceptor of the same call. A side table keyed by the message pointer would leak an entry
// whenever a decoded message does not reach the interceptor (a panic in between, a method
// without interceptors), and a leaked entry could later match a new message at the same
// address. A record inside the message lives and dies with it. A client cannot forge one: the
// codec removes the mark number from every message that decoded normally, so a client can at
// most get its own invalid request refused.

// utf8MarkNumber is the field number of the record, the largest valid one.
const utf8MarkNumber = protowire.MaxValidNumber

// Fields of the record (a small message in the unknown field): the paths, and how many more
// fields were invalid than are listed.
const (
	utf8MarkPath protowire.Number = 1
	utf8MarkMore protowire.Number = 2
)

// maxUTF8Paths is how many invalid fields a refusal lists.
const maxUTF8Paths = 100

// maxWalkDepth bounds the nesting the walk follows (proto.Unmarshal's default limit).
const maxWalkDepth = 10000

// invalidUTF8Description is the field violation of a string that is not valid UTF-8.
const invalidUTF8Description = "is not valid UTF-8"

// newServerCodec returns the server codec: grpc-go's proto codec with the UTF-8 repair.
func newServerCodec() encoding.CodecV2 {
	return utf8Codec{base: encoding.GetCodecV2(grpcproto.Name)}
}

type utf8Codec struct{ base encoding.CodecV2 }

func (c utf8Codec) Name() string { return c.base.Name() }

func (c utf8Codec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }

func (c utf8Codec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.base.Unmarshal(data, v)
	m := messageOf(v)
	if m == nil {
		return err
	}
	if err == nil {
		takeUTF8Mark(m) // a client cannot send a record of its own
		return nil
	}
	w := utf8Walker{}
	fixed, changed, werr := w.message(data.Materialize(), m.ProtoReflect().Descriptor(), "", 0)
	if werr != nil || !changed {
		return err // not a UTF-8 problem (or not only): grpc-go reports the original error
	}
	if proto.Unmarshal(fixed, m) != nil {
		return err
	}
	takeUTF8Mark(m) // drop a record the client sent, keep only ours
	setUTF8Mark(m, w.paths, w.more)
	return nil
}

func messageOf(v any) proto.Message {
	switch v := v.(type) {
	case proto.Message:
		return v
	case protoadapt.MessageV1:
		return protoadapt.MessageV2Of(v)
	}
	return nil
}

// utf8Walker collects the paths of invalid strings while it copies a message's wire bytes.
type utf8Walker struct {
	paths []string
	more  int
}

func (w *utf8Walker) found(path string) {
	if len(w.paths) < maxUTF8Paths {
		w.paths = append(w.paths, path)
	} else {
		w.more++
	}
}

// message walks b, the wire bytes of a message of md at path, and returns them with every
// string that must be UTF-8 (enforceUTF8) and is not made valid. It copies only when something
// changes; changed reports whether it did. Fields it does not know (unknown numbers,
// extensions, groups, wire types that do not match) are kept as they are.
func (w *utf8Walker) message(b []byte, md protoreflect.MessageDescriptor, path string, depth int) (out []byte, changed bool, err error) {
	if depth > maxWalkDepth {
		return nil, false, fmt.Errorf("message nested deeper than %d", maxWalkDepth)
	}
	var counts map[protowire.Number]int // occurrences of each repeated field so far
	for i := 0; i < len(b); {
		start := i
		num, typ, n := protowire.ConsumeTag(b[i:])
		if n < 0 {
			return nil, false, protowire.ParseError(n)
		}
		i += n
		fd := md.Fields().ByNumber(num)
		if typ != protowire.BytesType || fd == nil {
			n := protowire.ConsumeFieldValue(num, typ, b[i:])
			if n < 0 {
				return nil, false, protowire.ParseError(n)
			}
			i += n
			if changed {
				out = append(out, b[start:i]...)
			}
			continue
		}
		v, n := protowire.ConsumeBytes(b[i:])
		if n < 0 {
			return nil, false, protowire.ParseError(n)
		}
		i += n

		fieldPath := path
		if !md.IsMapEntry() { // a map's key and value are reported as the map field
			fieldPath = joinPath(path, string(fd.Name()))
			if fd.IsList() {
				if counts == nil {
					counts = map[protowire.Number]int{}
				}
				fieldPath += "[" + strconv.Itoa(counts[num]) + "]"
				counts[num]++
			}
		}
		var repaired []byte
		switch {
		case fd.Kind() == protoreflect.StringKind && enforceUTF8(fd) && !utf8.Valid(v):
			w.found(fieldPath)
			repaired = []byte(strings.ToValidUTF8(string(v), "\uFFFD"))
		case fd.Kind() == protoreflect.MessageKind:
			sub, subChanged, err := w.message(v, fd.Message(), fieldPath, depth+1)
			if err != nil {
				return nil, false, err
			}
			if subChanged {
				repaired = sub
			}
		}
		switch {
		case repaired != nil:
			if !changed {
				changed = true
				out = append(make([]byte, 0, len(b)), b[:start]...)
			}
			out = protowire.AppendTag(out, num, protowire.BytesType)
			out = protowire.AppendBytes(out, repaired)
		case changed:
			out = append(out, b[start:i]...)
		}
	}
	if !changed {
		return b, false, nil
	}
	return out, true, nil
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// enforceUTF8 reports whether proto.Unmarshal requires fd's strings to be valid UTF-8: proto3,
// or editions with utf8_validation = VERIFY (as protobuf-go's internal/strs.EnforceUTF8).
func enforceUTF8(fd protoreflect.FieldDescriptor) bool {
	if fd.Syntax() == protoreflect.Editions {
		if e, ok := fd.(interface{ EnforceUTF8() bool }); ok {
			return e.EnforceUTF8()
		}
	}
	return fd.Syntax() == protoreflect.Proto3
}

// setUTF8Mark appends the record of invalid fields to m's unknown fields.
func setUTF8Mark(m proto.Message, paths []string, more int) {
	var rec []byte
	for _, p := range paths {
		rec = protowire.AppendTag(rec, utf8MarkPath, protowire.BytesType)
		rec = protowire.AppendString(rec, p)
	}
	if more > 0 {
		rec = protowire.AppendTag(rec, utf8MarkMore, protowire.VarintType)
		rec = protowire.AppendVarint(rec, uint64(more))
	}
	r := m.ProtoReflect()
	u := append([]byte(nil), r.GetUnknown()...)
	u = protowire.AppendTag(u, utf8MarkNumber, protowire.BytesType)
	u = protowire.AppendBytes(u, rec)
	r.SetUnknown(u)
}

// takeUTF8Mark removes the record of invalid fields from m and returns it (paths nil when m
// has none). It reads only m's unknown fields, which are nearly always empty.
func takeUTF8Mark(m proto.Message) (paths []string, more int) {
	r := m.ProtoReflect()
	u := r.GetUnknown()
	if len(u) == 0 {
		return nil, 0
	}
	var rest []byte
	found := false
	for i := 0; i < len(u); {
		num, typ, n := protowire.ConsumeTag(u[i:])
		if n < 0 {
			return nil, 0 // unknown fields that do not parse hold no record
		}
		k := protowire.ConsumeFieldValue(num, typ, u[i+n:])
		if k < 0 {
			return nil, 0
		}
		if num == utf8MarkNumber {
			if !found {
				found = true
				rest = append(rest, u[:i]...)
			}
			if typ == protowire.BytesType {
				rec, _ := protowire.ConsumeBytes(u[i+n:])
				p, mo := parseUTF8Mark(rec)
				paths, more = append(paths, p...), more+mo
			}
		} else if found {
			rest = append(rest, u[i:i+n+k]...)
		}
		i += n + k
	}
	if found {
		r.SetUnknown(rest)
	}
	return paths, more
}

func parseUTF8Mark(rec []byte) (paths []string, more int) {
	for len(rec) > 0 {
		num, typ, n := protowire.ConsumeTag(rec)
		if n < 0 {
			return paths, more
		}
		rec = rec[n:]
		switch {
		case num == utf8MarkPath && typ == protowire.BytesType:
			s, n := protowire.ConsumeString(rec)
			if n < 0 {
				return paths, more
			}
			paths, rec = append(paths, s), rec[n:]
		case num == utf8MarkMore && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(rec)
			if n < 0 {
				return paths, more
			}
			more, rec = more+int(v), rec[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, rec)
			if n < 0 {
				return paths, more
			}
			rec = rec[n:]
		}
	}
	return paths, more
}

// utf8Violations returns the INVALID_ARGUMENT error for the invalid fields the codec recorded
// in req, or nil when it recorded none.
func utf8Violations(req any) error {
	m := messageOf(req)
	if m == nil {
		return nil
	}
	paths, more := takeUTF8Mark(m)
	if len(paths) == 0 {
		return nil
	}
	var v apierror.Violations
	for i, p := range paths {
		d := invalidUTF8Description
		if more > 0 && i == len(paths)-1 {
			d = fmt.Sprintf("%s (and %d more fields after it)", d, more)
		}
		v.Add(p, d)
	}
	return v.Err()
}
