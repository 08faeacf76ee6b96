package paging_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"

	"pgregory.net/rapid"

	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/paging"
)

// tokenViolation returns the description of the page_token violation of err ("" if none).
func tokenViolation(t *testing.T, err error) string {
	t.Helper()
	if !errors.Is(err, apierror.ErrInvalidArgument) {
		t.Fatalf("error %v, want INVALID_ARGUMENT", err)
	}
	var ve *apierror.ViolationsError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v has no field violations", err)
	}
	for _, v := range ve.Violations() {
		if v.Field == paging.TokenField {
			return v.Description
		}
	}
	return ""
}

func eightBytes(k []byte) bool { return len(k) == 8 }

func TestDecode(t *testing.T) {
	workers := paging.For("workers", "520100", "ACTIVE")
	b64 := base64.RawURLEncoding.EncodeToString
	tests := []struct {
		name    string
		listing paging.Listing
		tok     string
		want    []byte // the key, when accepted
		refused bool
	}{
		{"empty token is the first page", workers, "", nil, false},
		{"round trip", workers, workers.Token([]byte("k1")), []byte("k1"), false},
		{"round trip of a binary key", workers, workers.Token([]byte{0, 0xff, 0}), []byte{0, 0xff, 0}, false},
		{"garbage", workers, "garbage", nil, true},
		{"not base64url", workers, "!!!", nil, true},
		{"padded base64", workers, base64.URLEncoding.EncodeToString([]byte("k")), nil, true},
		{"a raw key", workers, b64([]byte("520100-worker")), nil, true},
		{"no key", workers, b64(append([]byte{1}, make([]byte, 8)...)), nil, true},
		{"other filters", workers, paging.For("workers", "520100", "LEFT").Token([]byte("k1")), nil, true},
		{"filters moved between fields", paging.For("workers", "520100A", "CTIVE"), workers.Token([]byte("k1")), nil, true},
		{"other collection", workers, paging.For("batches", "520100", "ACTIVE").Token([]byte("k1")), nil, true},
		{"no filters for filters", paging.For("workers"), workers.Token([]byte("k1")), nil, true},
		{"a key of the listing's shape", workers.Keys(eightBytes), workers.Token([]byte("12345678")), []byte("12345678"), false},
		{"a key of another shape", workers.Keys(eightBytes), workers.Token([]byte("k1")), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.listing.Decode(tt.tok)
			var v apierror.Violations
			tt.listing.Check(&v, tt.tok)
			if tt.refused {
				if reason := tokenViolation(t, err); reason == "" {
					t.Fatalf("error %v, want a violation on page_token", err)
				}
				if v.Len() != 1 {
					t.Errorf("Check added %d violations, want 1", v.Len())
				}
				return
			}
			if err != nil || v.Len() != 0 {
				t.Fatalf("Decode: %v; Check: %v", err, v.List())
			}
			if !bytes.Equal(got, tt.want) || (tt.want == nil) != (got == nil) {
				t.Errorf("key %q, want %q", got, tt.want)
			}
		})
	}
}

// The two refusals say different things: a token that is not one of ours, and one of another
// listing.
func TestRefusalReasons(t *testing.T) {
	l := paging.For("c", "f")
	_, garbage := l.Decode("garbage")
	_, other := l.Decode(paging.For("c", "g").Token([]byte("k")))
	if g, o := tokenViolation(t, garbage), tokenViolation(t, other); g == o || g == "" || o == "" {
		t.Errorf("reasons %q and %q, want two different ones", g, o)
	}
}

// TestSize: 0 is the default, a size above Max is served as Max (not refused: AIP-158, every
// List of every service), a negative size is refused.
func TestSize(t *testing.T) {
	s := paging.Size{Default: 100, Max: 1000}
	tests := []struct {
		n       int32
		want    int
		refused bool
	}{
		{0, 100, false},
		{-1, 100, true},
		{-1 << 31, 100, true},
		{1, 1, false},
		{1000, 1000, false},
		{1001, 1000, false},
		{1<<31 - 1, 1000, false},
	}
	for _, tt := range tests {
		if got := s.Of(tt.n); got != tt.want {
			t.Errorf("Of(%d) = %d, want %d", tt.n, got, tt.want)
		}
		var v apierror.Violations
		s.Check(&v, tt.n)
		if (v.Len() == 1) != tt.refused {
			t.Errorf("Check(%d) = %v, want refused %v", tt.n, v.List(), tt.refused)
		}
		if tt.refused && v.List()[0].Field != paging.SizeField {
			t.Errorf("Check(%d) names %q, want %q", tt.n, v.List()[0].Field, paging.SizeField)
		}
	}
}

// A token decodes with the listing it was made for, to the key it carries, and with no other.
func TestTokenBindsItsListing(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		fields := rapid.SliceOfN(rapid.StringN(0, 6, -1), 0, 4)
		coll, filters := rapid.StringN(0, 6, -1).Draw(t, "collection"), fields.Draw(t, "filters")
		key := rapid.SliceOfN(rapid.Byte(), 1, 20).Draw(t, "key")
		otherColl, otherFilters := rapid.StringN(0, 6, -1).Draw(t, "other collection"), fields.Draw(t, "other filters")
		tok := paging.For(coll, filters...).Token(key)
		got, err := paging.For(coll, filters...).Decode(tok)
		if err != nil || !bytes.Equal(got, key) {
			t.Fatalf("own listing: %q, %v; want %q", got, err, key)
		}
		same := coll == otherColl && len(filters) == len(otherFilters)
		for i := 0; same && i < len(filters); i++ {
			same = filters[i] == otherFilters[i]
		}
		_, err = paging.For(otherColl, otherFilters...).Decode(tok)
		if same != (err == nil) {
			t.Fatalf("listing %q %q decoding a token of %q %q: %v", otherColl, otherFilters, coll, filters, err)
		}
	})
}
