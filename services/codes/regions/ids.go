package regions

import "fmt"

// Ids made by the regional services (worker, batch, vacancy and candidate ids) start with the
// 6-digit code of the province that made them and a "-" (docs/api.md, "Ids and references"):
// that start is the one part of an id a client or a peer may rely on, and it names the id's
// owner. The rest is opaque.

// IDOwner returns the province code an id starts with ("520000" for "520000-B00000001"), or ""
// when the id does not start with six digits and a "-".
func IDOwner(id string) string {
	if len(id) < 8 || id[6] != '-' || !isDigits(id[:6], 6) {
		return ""
	}
	return id[:6]
}

// IDOf reports whether id is an id of province: it starts with province's code and a "-".
func IDOf(id, province string) bool { return province != "" && IDOwner(id) == province }

// IDOfProblem returns why id is not an id of province ("" when it is), in words for a field
// violation: what the id must start with.
func IDOfProblem(id, province string) string {
	if IDOf(id, province) {
		return ""
	}
	return fmt.Sprintf("must start with %s-, the code of its province %s and a -, got %q", province, province, id)
}
