package receiving

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"hash/fnv"

	"github.com/eastwest/labourlink/services/apierror"
)

// Page tokens are opaque to clients: base64url of an 8-byte hash of the request's filters
// followed by the last key returned. A token used with other filters is refused.

func filterHash(filters ...string) uint64 {
	h := fnv.New64a()
	for _, f := range filters {
		_, _ = h.Write([]byte(f))
		_, _ = h.Write([]byte{0})
	}
	return h.Sum64()
}

func encodePageToken(lastKey []byte, filters ...string) string {
	b := binary.BigEndian.AppendUint64(nil, filterHash(filters...))
	return base64.RawURLEncoding.EncodeToString(append(b, lastKey...))
}

// decodePageToken returns the key after which the page starts (nil for the first page).
func decodePageToken(tok string, filters ...string) ([]byte, error) {
	if tok == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) <= 8 {
		return nil, pageTokenError("is not a token returned by this service")
	}
	if binary.BigEndian.Uint64(b[:8]) != filterHash(filters...) {
		return nil, pageTokenError("was returned for other filters: keep the filters of the first page")
	}
	return bytes.Clone(b[8:]), nil
}

func pageTokenError(reason string) error {
	var v apierror.Violations
	v.Add("page_token", reason)
	return v.Err()
}

// pageSize applies the default and the maximum; negative sizes are refused by validation.
func pageSize(n int32, def, maxSize int) int {
	switch {
	case n <= 0:
		return def
	case int(n) > maxSize:
		return maxSize
	}
	return int(n)
}

func checkPageSize(v *apierror.Violations, n int32) {
	if n < 0 {
		v.Add("page_size", "must not be negative")
	}
}

// startAfter positions a cursor-style scan after key: it returns the first key to look at.
func startAfter(after []byte) []byte {
	if after == nil {
		return nil
	}
	return append(bytes.Clone(after), 0)
}
