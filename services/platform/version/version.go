// Package version says which build of labourlink is running, from the build information the Go
// toolchain writes into every binary (module version, VCS revision and time, whether the tree
// had uncommitted changes): the same for `labourlink version`, every binary's -version, the
// "serving" log line and the `labourlink-version` header every service sends.
package version

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Build is what a binary knows of its build.
type Build struct {
	// Version is the module version ("v1.0.0"), or "(devel)" for a build from a checkout.
	Version string
	// Revision is the VCS commit the binary was built from ("" when unknown, as under go test).
	Revision string
	// Time is the commit time (RFC 3339), "" when unknown.
	Time string
	// Modified reports uncommitted changes in the tree it was built from.
	Modified bool
	// GoVersion is the toolchain ("go1.26.8").
	GoVersion string
}

// Info returns the build of the running binary.
func Info() Build {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Build{Version: "(unknown)"}
	}
	b := Build{Version: bi.Main.Version, GoVersion: bi.GoVersion}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// String renders b on one line: "(devel) 3f2a9c1d7e4b (2026-12-02T02:40:11Z, modified) go1.26.8".
func (b Build) String() string {
	parts := []string{b.Version}
	if b.Revision != "" {
		rev := b.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		var when []string
		if b.Time != "" {
			when = append(when, b.Time)
		}
		if b.Modified {
			when = append(when, "modified")
		}
		if len(when) > 0 {
			rev += " (" + strings.Join(when, ", ") + ")"
		}
		parts = append(parts, rev)
	}
	if b.GoVersion != "" {
		parts = append(parts, b.GoVersion)
	}
	return strings.Join(parts, " ")
}

// String is the build of the running binary, on one line.
func String() string { return Info().String() }

// Header is the gRPC response header in which every service sends String.
const Header = "labourlink-version"

// Line is what a program prints for -version.
func Line(program string) string { return fmt.Sprintf("%s %s", program, String()) }
