package privacy

import (
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/eastwest/labourlink/services/platform/apierror"
)

// Descriptions of the violations Scan reports. They never quote the value.
const (
	// WorkerIDMessage is the description of a worker id that is, looks like or holds an identity
	// number (or a phone number).
	WorkerIDMessage = "worker_id must be the opaque worker id, never an identity number"
	// IDNumberMessage is the description of any other field holding an identity number.
	IDNumberMessage = "must not contain a resident identity number (personal data stays in the worker's sending province; other services know a worker only by the opaque worker id)"
	// PhoneMessage is the description of a field holding a mobile phone number.
	PhoneMessage = "must not contain a mobile phone number (personal data stays in the worker's sending province; write it without the number)"
)

// Allow lists the fields that may hold personal data on purpose, by the field's full protobuf
// name, with the kinds each may hold: for example
//
//	"labourlink.sending.v1.WorkerRow.id_number": privacy.IDNumber,
//	"labourlink.sending.v1.WorkerRow.phone":     privacy.Phone,
//	"labourlink.sending.v1.ImportWorkersRequest.rows": privacy.CheckedPerItem,
//
// A field not listed may hold neither.
type Allow map[protoreflect.FullName]Kind

// Check returns the violations Scan finds in m (INVALID_ARGUMENT with field violations), or nil.
func Check(m proto.Message, allow Allow) error {
	var v apierror.Violations
	Scan(&v, "", m, allow)
	return v.Err()
}

// Scan adds a violation for every string field of m, at any depth, that holds personal data it
// may not hold (see Allow), with the field's path after prefix ("events[0].detail"):
//
//   - a field that names workers (worker_id, and lists named *worker_ids) is refused when its
//     value has the shape of an identity number, valid or not (LooksLikeIDNumber), or holds an
//     identity number or a phone number (Find);
//   - other identifiers (name, *_id, *_ids, *_token: values machines make, often hex, where
//     11 digits in a row mean nothing) are refused when they hold an identity number;
//   - every other string field, free text above all, is refused when it holds an identity
//     number or a phone number.
//
// Map keys and values are scanned as the map field (the path does not show the key). Fields
// are visited in field-number order, so the violations come in a stable order.
func Scan(v *apierror.Violations, prefix string, m proto.Message, allow Allow) {
	if m == nil {
		return
	}
	if pm := m.ProtoReflect(); pm.IsValid() {
		sc := scanner{v: v, allow: allow, path: append(make([]byte, 0, 64), prefix...)}
		sc.message(pm)
	}
}

// scanner walks one message. path is the path of the value being looked at, built in place so
// that a clean request (the common case) costs no allocation per field.
type scanner struct {
	v     *apierror.Violations
	allow Allow
	path  []byte
}

func (sc *scanner) message(m protoreflect.Message) {
	fields := m.Descriptor().Fields()
	base := len(sc.path)
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if (fd.Kind() != protoreflect.StringKind && fd.Message() == nil) || !m.Has(fd) {
			continue
		}
		allowed := sc.allow[fd.FullName()]
		if allowed&CheckedPerItem != 0 {
			continue
		}
		sc.path = append(sc.path[:base], fd.Name()...)
		val := m.Get(fd)
		switch {
		case fd.IsMap():
			val.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				if fd.MapKey().Kind() == protoreflect.StringKind {
					sc.check(fd, k.String(), allowed)
				}
				sc.value(fd.MapValue(), mv, allowed)
				return true
			})
		case fd.IsList():
			l := val.List()
			named := len(sc.path)
			for j := 0; j < l.Len(); j++ {
				sc.path = append(strconv.AppendInt(append(sc.path[:named], '['), int64(j), 10), ']')
				sc.value(fd, l.Get(j), allowed)
			}
		default:
			sc.value(fd, val, allowed)
		}
	}
	sc.path = sc.path[:base]
}

func (sc *scanner) value(fd protoreflect.FieldDescriptor, val protoreflect.Value, allowed Kind) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		sc.check(fd, val.String(), allowed)
	case protoreflect.MessageKind, protoreflect.GroupKind:
		here := len(sc.path)
		sc.path = append(sc.path, '.')
		sc.message(val.Message())
		sc.path = sc.path[:here]
	}
}

// check adds the violation, if any, of one string value of field fd.
func (sc *scanner) check(fd protoreflect.FieldDescriptor, s string, allowed Kind) {
	look := Any &^ allowed
	if look == 0 || s == "" {
		return
	}
	name := string(fd.Name())
	switch {
	case isWorkerIDField(name):
		if (look&IDNumber != 0 && LooksLikeIDNumber(s)) || Find(s, look) != 0 {
			sc.v.Add(string(sc.path), WorkerIDMessage)
		}
		return
	case isIdentifierField(name):
		look &= IDNumber
	}
	switch found := Find(s, look); {
	case found&IDNumber != 0:
		sc.v.Add(string(sc.path), IDNumberMessage)
	case found&Phone != 0:
		sc.v.Add(string(sc.path), PhoneMessage)
	}
}

// isWorkerIDField reports whether a field holds worker ids.
func isWorkerIDField(name string) bool {
	return name == "worker_id" || strings.HasSuffix(name, "worker_ids")
}

// isIdentifierField reports whether a field holds an identifier (a resource name, an id, a page
// token) rather than text people write.
func isIdentifierField(name string) bool {
	return name == "name" || strings.HasSuffix(name, "_id") || strings.HasSuffix(name, "_ids") ||
		strings.HasSuffix(name, "_token")
}
