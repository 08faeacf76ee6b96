package version

import "testing"

func TestBuildString(t *testing.T) {
	tests := []struct {
		b    Build
		want string
	}{
		{Build{Version: "v1.0.0", GoVersion: "go1.26.8"}, "v1.0.0 go1.26.8"},
		{Build{Version: "(devel)", Revision: "3f2a9c1d7e4b5a6f", Time: "2026-12-02T02:40:11Z", Modified: true, GoVersion: "go1.26.8"},
			"(devel) 3f2a9c1d7e4b (2026-12-02T02:40:11Z, modified) go1.26.8"},
		{Build{Version: "(devel)", Revision: "abc"}, "(devel) abc"},
	}
	for _, tt := range tests {
		if got := tt.b.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.b, got, tt.want)
		}
	}
	// A test binary has build information: the toolchain at least.
	if b := Info(); b.GoVersion == "" || b.Version == "" {
		t.Errorf("Info() = %+v, want the toolchain and a version", b)
	}
}
