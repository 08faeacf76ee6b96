// Package paging provides the page tokens and page sizes of every List call (AIP-158).
//
// A page token is opaque to clients: base64url (no padding) of a format byte, an 8-byte digest
// of the listing it was issued for (the collection or method, then the request's filter
// values), and the last key returned. A token is accepted only by the listing it was issued
// for: garbage, a token of another List and a token used with other filters are refused with
// INVALID_ARGUMENT and a BadRequest field violation on page_token, instead of being read as a
// position.
//
// The digest binds a token to its filters; it is not a secret, and a client that forges a
// token only gets a page of a listing it could ask for anyway. Handlers still treat the key as
// a position to seek after, never as a key that must exist.
//
// Tokens handed out before this format (each service had its own) are refused after an
// upgrade: a client that gets INVALID_ARGUMENT on page_token restarts its listing from the
// first page. The same holds for a token of a running listing if a later version changes the
// format byte.
package paging

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"slices"

	"github.com/eastwest/labourlink/services/platform/apierror"
)

// format is the first byte of every token; a token of another format is refused.
const format = 1

const digestLen = 8

// Field is the request field a refused token or size is reported on.
const (
	TokenField = "page_token"
	SizeField  = "page_size"
)

// Reasons of a refused token.
const (
	reasonGarbage = "is not a page token returned by this service: send the next_page_token of the previous page, or none for the first page"
	reasonOther   = "was returned for another listing or other filters: keep the filters of the first page, or start again without a page token"
)

// Listing is one List call with its filters: what a token is bound to.
type Listing struct {
	digest [digestLen]byte
	isKey  func(key []byte) bool
}

// For returns the listing of collection (a method or collection name, unique per List) with
// the request's filter values, in a fixed order. Values are length-prefixed, so ("ab", "") and
// ("a", "b") are different listings.
func For(collection string, filters ...string) Listing {
	h := sha256.New()
	for _, s := range append([]string{collection}, filters...) {
		_, _ = h.Write(binary.AppendUvarint(nil, uint64(len(s))))
		_, _ = h.Write([]byte(s))
	}
	var l Listing
	copy(l.digest[:], h.Sum(nil))
	return l
}

// Keys returns l refusing, as garbage, a token whose key isKey rejects: a key of another shape
// than the keys of the List, which only a forged token holds.
func (l Listing) Keys(isKey func(key []byte) bool) Listing {
	l.isKey = isKey
	return l
}

// Token returns the page token of the page after last, the last key returned; last must not
// be empty.
func (l Listing) Token(last []byte) string {
	b := make([]byte, 0, 1+digestLen+len(last))
	b = append(b, format)
	b = append(b, l.digest[:]...)
	b = append(b, last...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Decode returns the last key of the previous page (nil for "", the first page). A token that is
// not one of l is an INVALID_ARGUMENT error with a violation on page_token.
func (l Listing) Decode(tok string) ([]byte, error) {
	after, reason := l.decode(tok)
	if reason != "" {
		return nil, refusal(reason)
	}
	return after, nil
}

// Check adds a violation on page_token to v unless tok is "" or a token of l; for validation
// before the handler runs.
func (l Listing) Check(v *apierror.Violations, tok string) {
	if _, reason := l.decode(tok); reason != "" {
		v.Add(TokenField, reason)
	}
}

func refusal(reason string) error {
	var v apierror.Violations
	v.Add(TokenField, reason)
	return v.Err()
}

func (l Listing) decode(tok string) ([]byte, string) {
	if tok == "" {
		return nil, ""
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) <= 1+digestLen || b[0] != format {
		return nil, reasonGarbage
	}
	if !bytes.Equal(b[1:1+digestLen], l.digest[:]) {
		return nil, reasonOther
	}
	key := b[1+digestLen:]
	if l.isKey != nil && !l.isKey(key) {
		return nil, reasonGarbage
	}
	return slices.Clone(key), ""
}

// Size is the page size policy of a List: the size of a request that asks for none, and the
// largest page returned.
type Size struct {
	Default, Max int
}

// Of returns the page size for a request's page_size n: Default when n is 0 (or negative,
// which validation refuses), at most Max.
func (s Size) Of(n int32) int {
	if n <= 0 {
		return s.Default
	}
	return min(int(n), s.Max)
}

// Check adds a violation on page_size to v when n is negative. A size above Max is not an
// error: it is served as Max (Of), as AIP-158 asks, by every List of every service.
func (s Size) Check(v *apierror.Violations, n int32) {
	if n < 0 {
		v.Addf(SizeField, "must not be negative (0 is the default %d; a size above %d is served as %d)", s.Default, s.Max, s.Max)
	}
}
