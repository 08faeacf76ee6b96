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
// It runs on every request of every service (the grpcserver guard): a first walk only looks
// (no paths, no violations, no allocation) and the request is walked again to report only when
// it holds something.
func Check(m proto.Message, allow Allow) error {
	if m == nil {
		return nil
	}
	pm := m.ProtoReflect()
	if !pm.IsValid() {
		return nil
	}
	probe := scanner{allow: allow}
	probe.message(pm)
	if !probe.found {
		return nil
	}
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
// that a clean request (the common case) costs no allocation per field. A scanner without
// violations (v nil) only looks: it builds no path and sets found at the first finding.
type scanner struct {
	v     *apierror.Violations
	allow Allow
	path  []byte
	found bool
}

// report adds the violation desc at the current path, or notes a finding when only looking.
func (sc *scanner) report(desc string) {
	if sc.v == nil {
		sc.found = true
		return
	}
	sc.v.Add(string(sc.path), desc)
}

// at sets the path to the first n bytes of the current one followed by parts (nothing when
// only looking).
func (sc *scanner) at(n int, parts ...string) {
	if sc.v == nil {
		return
	}
	sc.path = sc.path[:n]
	for _, p := range parts {
		sc.path = append(sc.path, p...)
	}
}

func (sc *scanner) message(m protoreflect.Message) {
	fields := m.Descriptor().Fields()
	base := len(sc.path)
	for i := 0; i < fields.Len() && !sc.found; i++ {
		fd := fields.Get(i)
		if (fd.Kind() != protoreflect.StringKind && fd.Message() == nil) || !m.Has(fd) {
			continue
		}
		allowed := sc.allow[fd.FullName()]
		if allowed&CheckedPerItem != 0 {
			continue
		}
		sc.at(base, string(fd.Name()))
		val := m.Get(fd)
		switch {
		case fd.IsMap():
			sc.mapField(fd, val.Map(), allowed)
		case fd.IsList():
			l := val.List()
			named := len(sc.path)
			for j := 0; j < l.Len() && !sc.found; j++ {
				if sc.v != nil {
					sc.path = append(strconv.AppendInt(append(sc.path[:named], '['), int64(j), 10), ']')
				}
				sc.value(fd, l.Get(j), allowed)
			}
		default:
			sc.value(fd, val, allowed)
		}
	}
	sc.at(base)
}

// mapField scans the keys and values of a map field. The closure works on a copy of the
// scanner, so that sc itself does not escape to the heap: a request without maps (nearly all)
// is scanned without an allocation.
func (sc *scanner) mapField(fd protoreflect.FieldDescriptor, m protoreflect.Map, allowed Kind) {
	c := &scanner{v: sc.v, allow: sc.allow, path: sc.path}
	m.Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
		if fd.MapKey().Kind() == protoreflect.StringKind {
			c.check(fd, k.String(), allowed)
		}
		c.value(fd.MapValue(), mv, allowed)
		return !c.found
	})
	sc.path, sc.found = c.path, c.found
}

func (sc *scanner) value(fd protoreflect.FieldDescriptor, val protoreflect.Value, allowed Kind) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		sc.check(fd, val.String(), allowed)
	case protoreflect.MessageKind, protoreflect.GroupKind:
		here := len(sc.path)
		sc.at(here, ".")
		sc.message(val.Message())
		sc.at(here)
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
			sc.report(WorkerIDMessage)
		}
		return
	case isIdentifierField(name):
		look &= IDNumber
	}
	switch found := Find(s, look); {
	case found&IDNumber != 0:
		sc.report(IDNumberMessage)
	case found&Phone != 0:
		sc.report(PhoneMessage)
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
