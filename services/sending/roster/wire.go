package roster

// The hot read path serves stored bytes. GetWorker and ListWorkers answer with each worker's
// stored record (BucketWorkers) copied field by field on the wire, with the resource name put
// in front, the initial etag added when the record has none, and, for every view but
// WORKER_VIEW_FULL, the identity number, the phone and the free text masked exactly as
// maskOwned masks a decoded worker. Nothing else of the record is decoded: a decoded worker
// (proto.Unmarshal of its dates, timestamps, trips and placements) that is masked and encoded
// again by the response codec was most of the cost of a read (BENCHMARKS.md, "Roster reads
// under concurrent load"). The encoded workers travel in the response message's unknown fields
// under the response's worker field number, which proto.Marshal (the gRPC codec) writes as
// they are: on the wire the response is the same message, and every client, grpcurl and the
// HTTP transcoder (which goes through the gRPC server) decode it as usual. In the process the
// typed field stays empty; nothing between the handler and the codec reads a response.
//
// wire_test.go checks that, for every view, the bytes decode to what maskOwned makes of the
// decoded record.

import (
	"encoding/binary"
	"fmt"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/codes/idnumber"
	"github.com/eastwest/labourlink/services/platform/privacy"
)

// workerFields are the field numbers of sendingv1.Worker the wire path reads or patches, from the
// generated descriptor.
var workerFields = func() (f struct {
	name, idNumber, fullName, phone, status, erased, statusReason, etag protowire.Number
}) {
	fields := (&sendingv1.Worker{}).ProtoReflect().Descriptor().Fields()
	num := func(name protoreflect.Name) protowire.Number {
		fd := fields.ByName(name)
		if fd == nil {
			panic("sendingv1.Worker has no field " + string(name))
		}
		return fd.Number()
	}
	f.name, f.idNumber, f.fullName, f.phone = num("name"), num("id_number"), num("full_name"), num("phone")
	f.status, f.erased, f.statusReason, f.etag = num("status"), num("erased"), num("status_reason"), num("etag")
	return f
}()

// Field numbers of the worker fields of the read responses.
var (
	getWorkerField   = fieldNumber(&sendingv1.GetWorkerResponse{}, "worker")
	listWorkersField = fieldNumber(&sendingv1.ListWorkersResponse{}, "workers")
)

func fieldNumber(m proto.Message, name protoreflect.Name) protowire.Number {
	fd := m.ProtoReflect().Descriptor().Fields().ByName(name)
	if fd == nil {
		panic(fmt.Sprintf("%s has no field %s", m.ProtoReflect().Descriptor().FullName(), name))
	}
	return fd.Number()
}

// errBadRecord is the error of a stored worker record that does not parse.
func errBadRecord(id []byte, err error) error {
	// The id is not personal data; the record's content is not quoted.
	return fmt.Errorf("decode stored worker %s in %s: %w", id, BucketWorkers, err)
}

// appendWorker appends to dst the encoding of the worker whose key is id and whose stored record
// is rec, as it leaves the service in view: what proto.Marshal makes of
// maskOwned(Read(tx, id), view), field for field. rec may alias a transaction's memory; the
// result does not.
func appendWorker(dst, id, rec []byte, view sendingv1.WorkerView) ([]byte, error) {
	mask := view != sendingv1.WorkerView_WORKER_VIEW_FULL
	dst = protowire.AppendTag(dst, workerFields.name, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(len(workerNamePrefix)+len(id)))
	dst = append(append(dst, workerNamePrefix...), id...) // WorkerName(id)
	etag := false
	for i := 0; i < len(rec); {
		num, typ, n := protowire.ConsumeTag(rec[i:])
		if n < 0 {
			return nil, errBadRecord(id, protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, rec[i+n:])
		if m < 0 {
			return nil, errBadRecord(id, protowire.ParseError(m))
		}
		field := rec[i : i+n+m]
		i += n + m
		if num > workerFields.etag && !etag {
			// No etag stored (a record not changed since its import): the initial one, in its
			// place among the fields.
			dst = appendStringField(dst, workerFields.etag, initialEtag)
			etag = true
		}
		if typ != protowire.BytesType {
			dst = append(dst, field...)
			continue
		}
		v, _ := protowire.ConsumeBytes(rec[i-m:])
		switch {
		case num == workerFields.name:
			// Not stored; the name from the key is already in front.
		case num == workerFields.etag:
			etag = true
			if len(v) == 0 {
				dst = appendStringField(dst, num, initialEtag)
			} else {
				dst = append(dst, field...)
			}
		case !mask:
			dst = append(dst, field...)
		case num == workerFields.idNumber && asciiBytes(v):
			dst = appendMaskedASCII(dst, field, v, 4, 4, 8) // idnumber.Mask
		case num == workerFields.idNumber:
			dst = appendStringField(dst, num, idnumber.Mask(string(v)))
		case num == workerFields.phone && asciiBytes(v):
			dst = appendMaskedASCII(dst, field, v, 3, 4, 7) // maskPhone
		case num == workerFields.phone:
			dst = appendStringField(dst, num, maskPhone(string(v)))
		case (num == workerFields.statusReason || num == workerFields.fullName) && !privacy.MayHoldBytes(v):
			dst = append(dst, field...) // privacy.Mask would leave it as it is
		case num == workerFields.statusReason, num == workerFields.fullName:
			dst = appendStringField(dst, num, privacy.Mask(string(v)))
		default:
			dst = append(dst, field...)
		}
	}
	if !etag {
		dst = appendStringField(dst, workerFields.etag, initialEtag)
	}
	return dst, nil
}

// appendStringField appends a string field, or nothing for "" (proto3 does not encode it).
func appendStringField(dst []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return dst
	}
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	return protowire.AppendString(dst, s)
}

// appendMaskedASCII appends field, a string field whose value v (the end of field) is ASCII, with
// the bytes of v between the first head and the last tail replaced by '*', or all of them when v
// has no more than short bytes: idnumber.Mask and maskPhone of ASCII text, which keep its length.
func appendMaskedASCII(dst, field, v []byte, head, tail, short int) []byte {
	dst = append(dst, field[:len(field)-len(v)]...) // tag and length
	if len(v) <= short {
		head, tail = 0, 0
	}
	dst = append(dst, v[:head]...)
	for range len(v) - head - tail {
		dst = append(dst, '*')
	}
	return append(dst, v[len(v)-tail:]...)
}

func asciiBytes(v []byte) bool {
	for _, c := range v {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// workerState is what ListWorkers without data filters needs of a stored record: its status and
// whether it is a tombstone.
func workerState(id, rec []byte) (sendingv1.WorkerStatus, bool, error) {
	var status sendingv1.WorkerStatus
	erased := false
	for i := 0; i < len(rec); {
		num, typ, n := protowire.ConsumeTag(rec[i:])
		if n < 0 {
			return 0, false, errBadRecord(id, protowire.ParseError(n))
		}
		i += n
		if typ == protowire.VarintType && (num == workerFields.status || num == workerFields.erased) {
			v, m := protowire.ConsumeVarint(rec[i:])
			if m < 0 {
				return 0, false, errBadRecord(id, protowire.ParseError(m))
			}
			i += m
			if num == workerFields.status {
				status = sendingv1.WorkerStatus(int32(v))
			} else {
				erased = v != 0
			}
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, rec[i:])
		if m < 0 {
			return 0, false, errBadRecord(id, protowire.ParseError(m))
		}
		i += m
	}
	return status, erased, nil
}

// encodedWorkers collects encoded workers (appendWorker) for the worker field of a response
// message, as unknown fields of the message, which proto.Marshal writes as they are: on the wire
// the message holds them in that field.
type encodedWorkers struct {
	field protowire.Number
	view  sendingv1.WorkerView
	hint  int    // how many workers are expected (the buffer's first size)
	buf   []byte // the fields so far
	n     int
}

// lenRoom is the room left for a worker's length before its encoding: 3 bytes of varint hold up
// to 2 MiB, far more than a record; a longer one moves its bytes.
const lenRoom = 3

// add encodes the worker id with the stored record rec (which may alias a transaction's memory).
func (e *encodedWorkers) add(id, rec []byte) error {
	if e.buf == nil {
		e.buf = make([]byte, 0, max(e.hint, 1)*(len(rec)+64))
	}
	start := len(e.buf)
	e.buf = protowire.AppendTag(e.buf, e.field, protowire.BytesType)
	at := len(e.buf)
	e.buf = append(e.buf, make([]byte, lenRoom)...)
	var err error
	if e.buf, err = appendWorker(e.buf, id, rec, e.view); err != nil {
		e.buf = e.buf[:start]
		return err
	}
	n := len(e.buf) - at - lenRoom
	var l [binary.MaxVarintLen64]byte
	size := protowire.AppendVarint(l[:0], uint64(n))
	if len(size) > lenRoom {
		e.buf = slices.Insert(e.buf, at+lenRoom, make([]byte, len(size)-lenRoom)...)
	}
	copy(e.buf[at:], size)
	if len(size) < lenRoom {
		copy(e.buf[at+len(size):], e.buf[at+lenRoom:])
		e.buf = e.buf[:at+len(size)+n]
	}
	e.n++
	return nil
}

// len is the number of workers added.
func (e *encodedWorkers) len() int { return e.n }

// setIn puts the workers in m, whose typed worker field must be empty.
func (e *encodedWorkers) setIn(m proto.Message) {
	if e.n == 0 {
		return
	}
	r := m.ProtoReflect()
	if u := r.GetUnknown(); len(u) > 0 {
		e.buf = append(u[:len(u):len(u)], e.buf...)
	}
	r.SetUnknown(e.buf)
}
