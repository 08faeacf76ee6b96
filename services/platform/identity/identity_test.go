package identity

import (
	"crypto/x509"
	"errors"
	"net/url"
	"testing"

	"pgregory.net/rapid"

	"github.com/eastwest/labourlink/services/codes/regions"
)

func TestURIs(t *testing.T) {
	tests := []struct {
		id   Identity
		uri  string
		base string
	}{
		{Coordination(), "labourlink://coordination", "coordination"},
		{Sending("520000"), "labourlink://region/520000/sending", "sending-520000"},
		{Receiving("440000"), "labourlink://region/440000/receiving", "receiving-440000"},
		{System("520000"), "labourlink://region/520000/system", "system-520000"},
		{Operator("520000", false), "labourlink://operator/520000/read", "operator-520000-read"},
		{Operator("440000", true), "labourlink://operator/440000/full", "operator-440000-full"},
		{Operator("", false), "labourlink://operator/national/read", "operator-national-read"},
		{Operator(National, true), "labourlink://operator/national/full", "operator-national-full"},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			if got := tt.id.String(); got != tt.uri {
				t.Errorf("String() = %q, want %q", got, tt.uri)
			}
			if got := tt.id.FileBase(); got != tt.base {
				t.Errorf("FileBase() = %q, want %q", got, tt.base)
			}
			got, err := ParseURI(tt.uri)
			if err != nil || got != tt.id {
				t.Errorf("ParseURI(%q) = %+v, %v; want %+v", tt.uri, got, err, tt.id)
			}
		})
	}
}

func TestParseURIRejects(t *testing.T) {
	for _, s := range []string{
		"",
		"https://region/520000/sending",
		"labourlink://region/520000",
		"labourlink://region/520000/operator",
		"labourlink://region/520100/sending", // a prefecture, not a province
		"labourlink://region/999999/sending",
		"labourlink://region//sending",
		"labourlink://region/520000/sending/extra",
		"labourlink://coordination/520000",
		"labourlink://operator/520000/write",
		"labourlink://operator//read",
		"labourlink://operator/national",
		"labourlink://nation/read",
		"labourlink://user@region/520000/sending",
		"labourlink://region:80/520000/sending",
		"labourlink://region/520000/sending?x=1",
		"labourlink://region/520000/sending#x",
		"labourlink:region/520000/sending",
	} {
		if id, err := ParseURI(s); err == nil {
			t.Errorf("ParseURI(%q) = %+v, want an error", s, id)
		}
	}
}

func TestParseSpec(t *testing.T) {
	tests := []struct {
		in   string
		want Identity
	}{
		{"520000:sending", Sending("520000")},
		{"440000:receiving", Receiving("440000")},
		{"520000:system", System("520000")},
		{"national:read", Operator("", false)},
		{"520000:full", Operator("520000", true)},
		{"coordination", Coordination()},
		{" labourlink://operator/national/full ", Operator("", true)},
	}
	for _, tt := range tests {
		got, err := ParseSpec(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseSpec(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"520000", "520000:writer", "national:system", "national:sending", "520100:sending", "x:read"} {
		if got, err := ParseSpec(bad); err == nil {
			t.Errorf("ParseSpec(%q) = %+v, want an error", bad, got)
		}
	}
}

func TestParseCertificate(t *testing.T) {
	u := func(s string) *url.URL {
		v, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name    string
		uris    []*url.URL
		want    Identity
		wantErr bool
		noID    bool
	}{
		{name: "one identity", uris: []*url.URL{u("labourlink://region/520000/sending")}, want: Sending("520000")},
		{name: "other URIs are ignored", uris: []*url.URL{u("spiffe://example.org/x"), u("labourlink://coordination")}, want: Coordination()},
		{name: "none", uris: nil, wantErr: true, noID: true},
		{name: "only foreign URIs", uris: []*url.URL{u("spiffe://example.org/x")}, wantErr: true, noID: true},
		{name: "two identities", uris: []*url.URL{u("labourlink://coordination"), u("labourlink://region/520000/sending")}, wantErr: true},
		{name: "malformed", uris: []*url.URL{u("labourlink://region/520000/boss")}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(&x509.Certificate{URIs: tt.uris})
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Parse = %+v, want an error", got)
				}
				if tt.noID != errors.Is(err, ErrNoIdentity) {
					t.Errorf("errors.Is(err, ErrNoIdentity) = %v, want %v (%v)", !tt.noID, tt.noID, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Parse = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	if _, err := Parse(nil); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("Parse(nil) = %v, want ErrNoIdentity", err)
	}
}

// Every valid identity survives String -> ParseURI, and FileBase names differ between
// identities.
func TestURIRoundTripProperty(t *testing.T) {
	provinces := regions.Default().Provinces()
	roles := []Role{RoleSending, RoleReceiving, RoleCoordination, RoleSystem, RoleOperatorRead, RoleOperatorFull}
	rapid.Check(t, func(t *rapid.T) {
		role := rapid.SampledFrom(roles).Draw(t, "role")
		id := Identity{Role: role}
		switch role {
		case RoleCoordination:
		case RoleOperatorRead, RoleOperatorFull:
			if rapid.Bool().Draw(t, "national") {
				break
			}
			fallthrough
		default:
			id.Region = rapid.SampledFrom(provinces).Draw(t, "province").Code
		}
		if err := id.Validate(); err != nil {
			t.Fatalf("Validate(%+v): %v", id, err)
		}
		got, err := ParseURI(id.String())
		if err != nil || got != id {
			t.Fatalf("ParseURI(%q) = %+v, %v; want %+v", id.String(), got, err, id)
		}
		other := Identity{Role: rapid.SampledFrom(roles).Draw(t, "other role"), Region: id.Region}
		if other.Validate() == nil && other != id && other.FileBase() == id.FileBase() {
			t.Fatalf("%v and %v share the file name %s", id, other, id.FileBase())
		}
	})
}

func FuzzParseURI(f *testing.F) {
	for _, s := range []string{
		"labourlink://coordination", "labourlink://region/520000/sending", "labourlink://operator/national/full",
		"labourlink://operator/440000/read", "labourlink://region/520000/system", "labourlink://%zz", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseURI(s)
		if err != nil {
			return
		}
		if err := id.Validate(); err != nil {
			t.Fatalf("ParseURI(%q) accepted an invalid identity %+v: %v", s, id, err)
		}
		again, err := ParseURI(id.String())
		if err != nil || again != id {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", s, again, err, id)
		}
	})
}
