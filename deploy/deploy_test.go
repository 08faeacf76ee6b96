package deploy

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	backupv1 "github.com/eastwest/labourlink/proto/labourlink/backup/v1"
	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/platform/authz"
	"github.com/eastwest/labourlink/services/platform/identity"
)

// --- settings: LABOURLINK_* variables against the services' flags ---

// flagOf is the flag a LABOURLINK_* variable sets (LABOURLINK_TLS_CA -> tls-ca).
func flagOf(env string) (string, bool) {
	name, ok := strings.CutPrefix(env, "LABOURLINK_")
	if !ok || name == "" {
		return "", false
	}
	return strings.ToLower(strings.ReplaceAll(name, "_", "-")), true
}

// parseSettings checks that every variable names a flag of the service of kind k and that the
// service accepts the whole configuration; it returns the configuration.
func parseSettings(t *testing.T, where string, k daemon.Kind, env map[string]string) daemon.Config {
	t.Helper()
	names := make([]string, 0, len(env))
	for name := range env {
		names = append(names, name)
	}
	sort.Strings(names)
	var args []string
	for _, name := range names {
		f, ok := flagOf(name)
		if !ok {
			t.Errorf("%s: %s is not a LABOURLINK_* setting", where, name)
			continue
		}
		// One flag at a time first, so that an unknown name is reported by name.
		if _, err := daemon.ParseFlags(k, "check", []string{"-" + f + "=" + env[name]}, io.Discard); err != nil &&
			strings.Contains(err.Error(), "flag provided but not defined") {
			t.Errorf("%s: %s: the %s service has no flag -%s", where, name, k, f)
			continue
		}
		args = append(args, "-"+f+"="+env[name])
	}
	cfg, err := daemon.ParseFlags(k, "check", args, io.Discard)
	if err != nil {
		t.Errorf("%s: the %s service refuses the settings %v: %v", where, k, args, err)
	}
	return cfg
}

func port(t *testing.T, where, hostPort string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(hostPort)
	if err != nil {
		t.Errorf("%s: %q is not host:port: %v", where, hostPort, err)
		return -1
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Errorf("%s: port of %q: %v", where, hostPort, err)
		return -1
	}
	return n
}

// --- systemd ---

// unit is a parsed systemd unit file: section -> key -> values in order.
type unit map[string]map[string][]string

// knownUnitKeys are the directives the units may use, per section (a typo is an error; systemd
// would only warn and ignore it).
var knownUnitKeys = map[string][]string{
	"Unit": {"Description", "Documentation", "After", "Wants", "Requires", "Before", "StartLimitIntervalSec", "StartLimitBurst"},
	"Service": {"Type", "ExecStart", "ExecStartPost", "ExecReload", "TimeoutStartSec", "EnvironmentFile", "Environment", "LoadCredential", "Restart", "RestartSec",
		"TimeoutStopSec", "KillMode", "KillSignal", "DynamicUser", "User", "Group", "StateDirectory", "StateDirectoryMode", "UMask",
		"NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "ProtectKernelTunables",
		"ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock", "ProtectHostname", "ProtectProc",
		"RestrictAddressFamilies", "RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID", "LockPersonality",
		"MemoryDenyWriteExecute", "SystemCallArchitectures", "SystemCallFilter", "SystemCallErrorNumber",
		"CapabilityBoundingSet", "AmbientCapabilities", "LimitNOFILE"},
	"Timer":   {"OnCalendar", "RandomizedDelaySec", "AccuracySec", "Persistent", "Unit"},
	"Install": {"WantedBy", "RequiredBy", "Alias", "DefaultInstance"},
}

func parseUnit(r io.Reader) (unit, error) {
	u := unit{}
	section := ""
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
			continue
		case strings.HasPrefix(line, "["):
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("line %d: bad section header %q", n, line)
			}
			section = line[1 : len(line)-1]
			if _, ok := knownUnitKeys[section]; !ok {
				return nil, fmt.Errorf("line %d: unknown section [%s]", n, section)
			}
			if _, dup := u[section]; dup {
				return nil, fmt.Errorf("line %d: section [%s] twice", n, section)
			}
			u[section] = map[string][]string{}
		case strings.HasSuffix(line, "\\"):
			return nil, fmt.Errorf("line %d: continuation lines are not used here", n)
		default:
			key, value, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fmt.Errorf("line %d: %q is not key=value", n, line)
			}
			if section == "" {
				return nil, fmt.Errorf("line %d: %q before any section", n, line)
			}
			key, value = strings.TrimSpace(key), strings.TrimSpace(value)
			if !slices.Contains(knownUnitKeys[section], key) {
				return nil, fmt.Errorf("line %d: unknown directive %s= in [%s]", n, key, section)
			}
			u[section][key] = append(u[section][key], value)
		}
	}
	return u, sc.Err()
}

func (u unit) one(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// parseEnvFile reads a systemd EnvironmentFile (KEY=VALUE lines, # comments).
func parseEnvFile(r io.Reader) (map[string]string, error) {
	env := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("line %d: %q is not KEY=VALUE", n, line)
		}
		if strings.ContainsAny(v, "\"'$`\\") {
			return nil, fmt.Errorf("line %d: keep values plain (no quotes or expansions): %q", n, line)
		}
		if _, dup := env[k]; dup {
			return nil, fmt.Errorf("line %d: %s set twice", n, k)
		}
		env[k] = v
	}
	return env, sc.Err()
}

// unitKind returns the service kind and whether the unit is a template (labourlink-KIND@).
func unitKind(file string) (daemon.Kind, bool, bool) {
	base := strings.TrimSuffix(filepath.Base(file), ".service")
	name, ok := strings.CutPrefix(base, "labourlink-")
	if !ok {
		return "", false, false
	}
	template := strings.HasSuffix(name, "@")
	k := daemon.Kind(strings.TrimSuffix(name, "@"))
	return k, template, slices.Contains(daemon.Kinds, k)
}

// expand replaces the systemd specifiers the units use.
func expand(s, instance string) string {
	return strings.NewReplacer("%i", instance, "%S", "/var/lib", "%%", "%").Replace(s)
}

func TestSystemdUnits(t *testing.T) {
	files, err := filepath.Glob("systemd/*.service")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[daemon.Kind]bool{}
	for _, file := range files {
		if filepath.Base(file) == backupUnit {
			continue // TestSystemdBackup
		}
		t.Run(filepath.Base(file), func(t *testing.T) {
			u := readUnit(t, file)
			k, template, ok := unitKind(file)
			if !ok {
				t.Fatalf("unit name %s is not labourlink-KIND[@].service", file)
			}
			seen[k] = true
			if template != (k != daemon.Coordination) {
				t.Errorf("regional services are template units (labourlink-%s@CODE), coordination is not", k)
			}
			for _, req := range [][2]string{
				{"Unit", "Description"}, {"Service", "ExecStart"}, {"Service", "EnvironmentFile"},
				{"Service", "StateDirectory"}, {"Install", "WantedBy"},
			} {
				if u.one(req[0], req[1]) == "" {
					t.Errorf("[%s] %s= is missing", req[0], req[1])
				}
			}
			for key, want := range map[string]string{
				"Restart": "on-failure", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
				"PrivateTmp": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": "",
			} {
				if v, ok := u["Service"][key]; !ok || v[len(v)-1] != want {
					t.Errorf("[Service] %s=%q, want %q", key, v, want)
				}
			}
			if u.one("Service", "DynamicUser") != "yes" && u.one("Service", "User") == "" {
				t.Error("the service needs its own user: DynamicUser=yes or User=")
			}
			if got, want := strings.Fields(u.one("Service", "ExecStart")), []string{"/usr/local/bin/labourlink", "serve", string(k)}; !slices.Equal(got, want) {
				t.Errorf("ExecStart=%v, want %v", got, want)
			}
			if template && !strings.Contains(u.one("Service", "StateDirectory"), "%i") {
				t.Error("a template unit's StateDirectory must name the instance (%i)")
			}

			// The settings the unit itself gives, checked against the flags with each example
			// instance's env file (deploy/example/).
			instances := []string{""}
			if template {
				instances, _ = filepath.Glob("example/" + string(k) + "-*.env")
				if len(instances) == 0 {
					t.Fatalf("no example/%s-CODE.env for this unit", k)
				}
			}
			for _, inst := range instances {
				code := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(inst), string(k)+"-"), ".env")
				unitName := "labourlink-" + string(k) + ".service"
				envFile := "example/coordination.env"
				if template {
					unitName = "labourlink-" + string(k) + "@" + code + ".service"
					envFile = inst
				}
				if got, want := expand(u.one("Service", "EnvironmentFile"), code), "/etc/labourlink/"+filepath.Base(envFile); got != want {
					t.Errorf("%s: EnvironmentFile=%s, want %s", unitName, got, want)
				}
				env := readEnv(t, envFile)
				for _, e := range u["Service"]["Environment"] {
					name, value, ok := strings.Cut(expand(e, code), "=")
					if !ok {
						t.Errorf("Environment=%s is not NAME=VALUE", e)
						continue
					}
					if _, dup := env[name]; dup {
						t.Errorf("%s: %s is set both by the unit and by %s", unitName, name, envFile)
					}
					env[name] = value
				}
				cfg := parseSettings(t, unitName+" with "+envFile, k, env)
				if want := "/var/lib/" + expand(u.one("Service", "StateDirectory"), code); cfg.DataDir != want {
					t.Errorf("%s: the data folder %s is not the StateDirectory %s", unitName, cfg.DataDir, want)
				}
				if template && cfg.Region != code {
					t.Errorf("%s: region %s", unitName, cfg.Region)
				}
				// The TLS files are the credentials the unit loads.
				creds := map[string]bool{}
				for _, lc := range u["Service"]["LoadCredential"] {
					name, src, ok := strings.Cut(expand(lc, code), ":")
					if !ok || !strings.HasPrefix(src, "/etc/labourlink/certs/") {
						t.Errorf("LoadCredential=%s: want NAME:/etc/labourlink/certs/FILE", lc)
					}
					creds["/run/credentials/"+unitName+"/"+name] = true
				}
				if !cfg.TLS.Enabled() {
					t.Errorf("%s: the example runs without TLS", unitName)
				}
				for _, p := range []string{cfg.TLS.CAFile, cfg.TLS.CertFile, cfg.TLS.KeyFile} {
					if !creds[p] {
						t.Errorf("%s: %s is not a credential the unit loads (%v)", unitName, p, creds)
					}
				}
				// The certificate the unit loads is this service's (identity.FileBase).
				self := daemon.Self(cfg)
				certFile, keyFile := identity.Paths("/etc/labourlink/certs", self)
				var loaded []string
				for _, lc := range u["Service"]["LoadCredential"] {
					_, src, _ := strings.Cut(expand(lc, code), ":")
					loaded = append(loaded, src)
				}
				for _, want := range []string{certFile, keyFile, "/etc/labourlink/certs/" + identity.CAFile} {
					if !slices.Contains(loaded, want) {
						t.Errorf("%s loads %v, not %s", unitName, loaded, want)
					}
				}
			}
		})
	}
	for _, k := range daemon.Kinds {
		if !seen[k] {
			t.Errorf("no systemd unit for the %s service", k)
		}
	}
}

const backupUnit = "labourlink-backup@.service"

// readUnit parses a unit file.
func readUnit(t *testing.T, file string) unit {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u, err := parseUnit(f)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return u
}

// readEnv parses an EnvironmentFile.
func readEnv(t *testing.T, file string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	env, err := parseEnvFile(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return env
}

// unitWords splits a command line of a unit as systemd does: at blanks, with '...' and "..."
// quoting a word (the units use no backslash escapes).
func unitWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	in, quote := false, rune(0)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '\\':
			return nil, fmt.Errorf("%q: no escapes", s)
		case (r == '\'' || r == '"') && !in:
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("%q: unterminated quote", s)
	}
	if in {
		words = append(words, w.String())
	}
	return words, nil
}

// expandCommand replaces in a command line of a unit what systemd replaces: the specifiers
// (with %d, the credentials folder of unitName), ${VAR} from env, and $$ (a literal $).
func expandCommand(s, instance, unitName string, env map[string]string) string {
	s = strings.NewReplacer("%i", instance, "%S", "/var/lib", "%d", "/run/credentials/"+unitName, "%%", "%").Replace(s)
	s = strings.ReplaceAll(s, "$$", "\x00")
	for name, v := range env {
		s = strings.ReplaceAll(s, "${"+name+"}", v)
	}
	return strings.ReplaceAll(s, "\x00", "$")
}

// The scheduled backup: labourlink-backup@NAME.timer starts labourlink-backup@NAME.service,
// which runs `labourlink backup` (flags of the CLI) of the service NAME at the address that
// service advertises, with a certificate loaded as a credential, into its own state directory,
// and deletes old backups only after a backup succeeded. Checked for every example instance
// (example/backup-NAME.env).
func TestSystemdBackup(t *testing.T) {
	u := readUnit(t, "systemd/"+backupUnit)
	timer := readUnit(t, "systemd/labourlink-backup@.timer")
	if timer.one("Timer", "OnCalendar") == "" || timer.one("Timer", "Persistent") != "yes" || timer.one("Install", "WantedBy") != "timers.target" {
		t.Errorf("the timer: OnCalendar=, Persistent=yes (a run missed while off is made up), WantedBy=timers.target: %v", timer)
	}
	if v := timer.one("Timer", "Unit"); v != "" {
		t.Errorf("Unit=%s: the timer starts the backup service of its own instance", v)
	}
	if u.one("Service", "Type") != "oneshot" || u.one("Service", "DynamicUser") != "yes" {
		t.Error("the backup is a oneshot service with its own dynamic user")
	}
	for key, want := range map[string]string{
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": "",
	} {
		if v, ok := u["Service"][key]; !ok || v[len(v)-1] != want {
			t.Errorf("[Service] %s=%q, want %q", key, v, want)
		}
	}
	instances, _ := filepath.Glob("example/backup-*.env")
	if len(instances) != 5 {
		t.Errorf("want the backup of each of the five services of the example: %v", instances)
	}
	for _, inst := range instances {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(inst), "backup-"), ".env")
		t.Run(name, func(t *testing.T) {
			unitName := "labourlink-backup@" + name + ".service"
			if got, want := expand(u.one("Service", "EnvironmentFile"), name), "/etc/labourlink/"+filepath.Base(inst); got != want {
				t.Errorf("EnvironmentFile=%s, want %s", got, want)
			}
			env := readEnv(t, inst)
			state := "/var/lib/" + expand(u.one("Service", "StateDirectory"), name)
			if !strings.Contains(u.one("Service", "StateDirectory"), "%i") {
				t.Error("StateDirectory must name the instance (%i)")
			}

			// The service backed up: its own settings (example/NAME.env).
			k := daemon.Kind(env["BACKUP_SERVICE"])
			if !slices.Contains(daemon.Kinds, k) || !(name == string(k) || strings.HasPrefix(name, string(k)+"-")) {
				t.Fatalf("BACKUP_SERVICE=%s for %s", k, name)
			}
			svc := readEnv(t, "example/"+name+".env")

			words, err := unitWords(expandCommand(u.one("Service", "ExecStart"), name, unitName, env))
			if err != nil {
				t.Fatal(err)
			}
			// /bin/sh -c 'exec "$@" -o "$STATE_DIRECTORY/..."' sh /usr/local/bin/labourlink backup FLAGS
			i := slices.Index(words, "/usr/local/bin/labourlink")
			if len(words) < 4 || words[0] != "/bin/sh" || words[1] != "-c" || i != 4 || len(words) < 6 || words[5] != "backup" {
				t.Fatalf("ExecStart=%v: want /bin/sh -c SCRIPT sh /usr/local/bin/labourlink backup FLAGS", words)
			}
			script := words[2]
			_, out, ok := strings.Cut(script, `exec "$@" -o "`)
			out, _, _ = strings.Cut(out, `"`)
			if !ok || !strings.HasPrefix(out, "$STATE_DIRECTORY/"+name+"-") || !strings.HasSuffix(out, ".backup") {
				t.Fatalf("the script %q: want exec \"$@\" -o \"$STATE_DIRECTORY/%s-TIME.backup\"", script, name)
			}
			flags := cliFlags(t, "backup", append(slices.Clone(words[6:]), "-o", strings.Replace(out, "$STATE_DIRECTORY", state, 1)))
			if flags["service"] != string(k) {
				t.Errorf("-service %q, want %s", flags["service"], k)
			}
			if flags["addr"] != svc["LABOURLINK_ADVERTISE"] || flags["addr"] == "" {
				t.Errorf("-addr %q, want the address %s advertises (%s)", flags["addr"], name, svc["LABOURLINK_ADVERTISE"])
			}
			creds := map[string]string{}
			for _, lc := range u["Service"]["LoadCredential"] {
				c, src, _ := strings.Cut(expand(lc, name), ":")
				creds["/run/credentials/"+unitName+"/"+c] = src
			}
			for flagName, want := range map[string]string{
				"tls-ca": "/etc/labourlink/certs/" + identity.CAFile, "tls-cert": "/etc/labourlink/certs/backup-" + name + ".pem",
				"tls-key": "/etc/labourlink/certs/backup-" + name + "-key.pem",
			} {
				if got := creds[flags[flagName]]; got != want {
					t.Errorf("-%s %s is the credential of %q, want %s", flagName, flags[flagName], got, want)
				}
			}

			// The clean-up: after the backup (ExecStartPost runs only when ExecStart succeeded),
			// in the state directory, files older than BACKUP_KEEP_DAYS.
			days, err := strconv.Atoi(env["BACKUP_KEEP_DAYS"])
			if err != nil || days < 1 {
				t.Errorf("BACKUP_KEEP_DAYS=%q: a number of days", env["BACKUP_KEEP_DAYS"])
			}
			post, err := unitWords(expandCommand(u.one("Service", "ExecStartPost"), name, unitName, env))
			if err != nil {
				t.Fatal(err)
			}
			if len(post) < 3 || post[0] != "/usr/bin/find" || !slices.Contains(post, state) || !slices.Contains(post, "-delete") ||
				!slices.Contains(post, "+"+env["BACKUP_KEEP_DAYS"]) {
				t.Errorf("ExecStartPost=%v: want find %s ... -mtime +%s -delete", post, state, env["BACKUP_KEEP_DAYS"])
			}
			for v := range env {
				if !strings.Contains(u.one("Service", "ExecStart")+u.one("Service", "ExecStartPost"), "${"+v+"}") {
					t.Errorf("%s sets %s, which the unit does not use", inst, v)
				}
			}
		})
	}
}

// The example federation is two pairs of the default pairing table, each side with its
// settings, and every service advertises a distinct endpoint.
func TestExampleFederation(t *testing.T) {
	files, err := filepath.Glob("example/*.env")
	if err != nil {
		t.Fatal(err)
	}
	var sending, receiving []string
	advertised := map[string]string{}
	for _, f := range files {
		base := strings.TrimSuffix(filepath.Base(f), ".env")
		if strings.HasPrefix(base, "backup-") {
			continue // the settings of a scheduled backup (TestSystemdBackup)
		}
		env := readEnv(t, f)
		if a := env["LABOURLINK_ADVERTISE"]; a == "" {
			t.Errorf("%s: no LABOURLINK_ADVERTISE", f)
		} else if other, dup := advertised[a]; dup {
			t.Errorf("%s and %s both advertise %s", f, other, a)
		} else {
			advertised[a] = f
			host, _, _ := net.SplitHostPort(a)
			if !strings.HasPrefix(host, base+".") {
				t.Errorf("%s advertises %s: the host must start with %s. (the certificate pattern {name})", f, a, base)
			}
		}
		switch {
		case base == "coordination":
		case strings.HasPrefix(base, "sending-"):
			sending = append(sending, strings.TrimPrefix(base, "sending-"))
		case strings.HasPrefix(base, "receiving-"):
			receiving = append(receiving, strings.TrimPrefix(base, "receiving-"))
		default:
			t.Errorf("%s: unexpected file", f)
		}
	}
	pairs := regions.DefaultPairings()
	paired := func(r, s string) bool { return slices.Contains(pairs, regions.Pairing{Receiving: r, Sending: s}) }
	count := 0
	for _, s := range sending {
		for _, r := range receiving {
			if paired(r, s) {
				count++
			}
		}
	}
	if count != 2 || len(sending) != 2 || len(receiving) != 2 {
		t.Errorf("the example is not a two-pair federation: sending %v, receiving %v, %d pairs", sending, receiving, count)
	}
}

// --- Kubernetes ---

// The rendered manifests are checked, not the files: kustomize builds the federation
// (kubernetes/kustomization.yaml, composing overlays/* of base/*) as `kubectl apply -k` does,
// and every object is decoded strictly into its Kubernetes API type.

// kinds are the kinds the manifests may hold, by apiVersion/kind.
var kinds = []string{
	"v1/Namespace", "v1/Service", "v1/ConfigMap", "v1/Secret", "v1/PersistentVolumeClaim",
	"apps/v1/StatefulSet", "batch/v1/CronJob", "networking.k8s.io/v1/NetworkPolicy",
	"policy/v1/PodDisruptionBudget",
}

// strictYAML is apimachinery's YAML serializer in strict mode over the API types of k8s.io/api:
// an unknown field (also one spelt with other capitals: the matching is case-sensitive, unlike
// encoding/json's), a duplicate field or a value of the wrong type is an error. The API server
// would drop such a field silently or refuse the object; kustomize passes it through.
var strictYAML = func() runtime.Decoder {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, networkingv1.AddToScheme, policyv1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	return kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme, kjson.SerializerOptions{Yaml: true, Strict: true})
}()

// decodeStrict decodes one manifest into its API type (strictYAML).
func decodeStrict(y []byte) (runtime.Object, error) {
	obj, gvk, err := strictYAML.Decode(y, nil, nil)
	if err != nil {
		return nil, err
	}
	if k := gvk.GroupVersion().String() + "/" + gvk.Kind; !slices.Contains(kinds, k) {
		return nil, fmt.Errorf("unexpected kind %s", k)
	}
	return obj, nil
}

// federation is the rendered example federation, by kind and name.
type federation struct {
	namespaces   map[string]*corev1.Namespace
	services     map[string]*corev1.Service
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	claims       map[string]*corev1.PersistentVolumeClaim
	statefulSets map[string]*appsv1.StatefulSet
	cronJobs     map[string]*batchv1.CronJob
	policies     map[string]*networkingv1.NetworkPolicy
	budgets      map[string]*policyv1.PodDisruptionBudget
}

// render builds the kustomization in dir with kustomize's Go API on the real file system, with
// kubectl's defaults (files only below the kustomization that names them), and decodes every
// object strictly.
func render(dir string) (*federation, error) {
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, err
	}
	f := &federation{
		namespaces: map[string]*corev1.Namespace{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		claims: map[string]*corev1.PersistentVolumeClaim{}, statefulSets: map[string]*appsv1.StatefulSet{},
		cronJobs: map[string]*batchv1.CronJob{}, policies: map[string]*networkingv1.NetworkPolicy{},
		budgets: map[string]*policyv1.PodDisruptionBudget{},
	}
	for _, r := range m.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			return nil, err
		}
		obj, err := decodeStrict(y)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", r.GetKind(), r.GetName(), err)
		}
		var dup bool
		switch o := obj.(type) {
		case *corev1.Namespace:
			dup = put(f.namespaces, o.Name, o)
		case *corev1.Service:
			dup = put(f.services, o.Name, o)
		case *corev1.ConfigMap:
			dup = put(f.configMaps, o.Name, o)
		case *corev1.Secret:
			dup = put(f.secrets, o.Name, o)
		case *corev1.PersistentVolumeClaim:
			dup = put(f.claims, o.Name, o)
		case *appsv1.StatefulSet:
			dup = put(f.statefulSets, o.Name, o)
		case *batchv1.CronJob:
			dup = put(f.cronJobs, o.Name, o)
		case *networkingv1.NetworkPolicy:
			dup = put(f.policies, o.Name, o)
		case *policyv1.PodDisruptionBudget:
			dup = put(f.budgets, o.Name, o)
		}
		if dup {
			return nil, fmt.Errorf("%s %s twice", r.GetKind(), r.GetName())
		}
	}
	return f, nil
}

// generated is the Secret a secretGenerator named base made (base-HASH), or nil.
func (f *federation) generated(base string) *corev1.Secret {
	for name, s := range f.secrets {
		if hash, ok := strings.CutPrefix(name, base+"-"); ok && len(hash) == 10 && !strings.Contains(hash, "-") {
			return s
		}
	}
	return nil
}

func put[T any](m map[string]T, name string, v T) (dup bool) {
	_, dup = m[name]
	m[name] = v
	return dup
}

// scratchCopy copies deploy/kubernetes into a temporary folder (without a certs/ folder an
// operator may have made) and makes throwaway certificates in its certs/, as `labourlink certs
// init` would, for the coordination service and every overlays/KIND-CODE.
func scratchCopy(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "kubernetes")
	err := filepath.WalkDir("kubernetes", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("kubernetes", p)
		if d.IsDir() {
			if filepath.Base(rel) == "certs" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	makeCerts(t, dir)
	return dir
}

// makeCerts makes the certificates of the overlays in dir/certs.
func makeCerts(t *testing.T, dir string) {
	t.Helper()
	overlays, err := filepath.Glob(filepath.Join(dir, "overlays", "*-*"))
	if err != nil {
		t.Fatal(err)
	}
	var plan identity.Plan
	for _, o := range overlays {
		kind, code, _ := strings.Cut(filepath.Base(o), "-")
		plan.Regions = append(plan.Regions, identity.RegionRole{Code: code, Role: identity.Role(kind)})
	}
	plan.Operators = identity.DefaultOperators(plan.Regions)
	if _, err := identity.Init(filepath.Join(dir, "certs"), plan); err != nil {
		t.Fatal(err)
	}
}

// renderExample renders the example federation from a scratch copy with throwaway certificates.
func renderExample(t *testing.T) (*federation, string) {
	t.Helper()
	dir := scratchCopy(t)
	f, err := render(dir)
	if err != nil {
		t.Fatal(err)
	}
	return f, dir
}

func TestKubernetesManifests(t *testing.T) {
	f, dir := renderExample(t)
	checkFederation(t, f, filepath.Join(dir, "certs"), map[daemon.Kind]int{daemon.Coordination: 1, daemon.Sending: 2, daemon.Receiving: 2})
}

// Adding a province is what deploy/README.md says: a copy of an overlay with the code changed,
// and two lines in the top-level resources and secretGenerator for its certificates.
func TestKubernetesNewProvince(t *testing.T) {
	dir := scratchCopy(t)
	src, err := os.ReadFile(filepath.Join(dir, "overlays", "sending-520000", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "overlays", "sending-500000"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "overlays", "sending-500000", "kustomization.yaml"), bytes.ReplaceAll(src, []byte("520000"), []byte("500000")), 0o644); err != nil {
		t.Fatal(err)
	}
	top := filepath.Join(dir, "kustomization.yaml")
	b, err := os.ReadFile(top)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "  - overlays/sending-520000\n", "  - overlays/sending-520000\n  - overlays/sending-500000\n", 1)
	s += "  - name: sending-500000-tls\n    files:\n      - tls.pem=certs/sending-500000.pem\n      - tls-key.pem=certs/sending-500000-key.pem\n" +
		"  - name: system-500000-tls\n    files:\n      - tls.pem=certs/system-500000.pem\n      - tls-key.pem=certs/system-500000-key.pem\n"
	if err := os.WriteFile(top, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	makeCerts(t, dir)
	f, err := render(dir)
	if err != nil {
		t.Fatal(err)
	}
	checkFederation(t, f, filepath.Join(dir, "certs"), map[daemon.Kind]int{daemon.Coordination: 1, daemon.Sending: 3, daemon.Receiving: 2})
	if _, ok := f.statefulSets["sending-500000"]; !ok {
		t.Errorf("no StatefulSet sending-500000 in %v", slices.Sorted(maps.Keys(f.statefulSets)))
	}
}

// Every overlay also builds on its own (kubectl apply -k overlays/KIND-CODE, for a cluster that
// has the certificate Secrets already) and decodes strictly.
func TestKubernetesOverlaysBuildAlone(t *testing.T) {
	dir := scratchCopy(t)
	overlays, err := filepath.Glob(filepath.Join(dir, "overlays", "*"))
	if err != nil || len(overlays) == 0 {
		t.Fatalf("no overlays: %v", err)
	}
	for _, o := range overlays {
		t.Run(filepath.Base(o), func(t *testing.T) {
			f, err := render(o)
			if err != nil {
				t.Fatal(err)
			}
			if len(f.statefulSets) != 1 || len(f.cronJobs) != 1 || len(f.policies) != 1 {
				t.Errorf("an overlay is one service: %d StatefulSets, %d CronJobs, %d NetworkPolicies", len(f.statefulSets), len(f.cronJobs), len(f.policies))
			}
			if _, ok := f.statefulSets[filepath.Base(o)]; !ok {
				t.Errorf("overlays/%s has no StatefulSet of that name: %v", filepath.Base(o), slices.Sorted(maps.Keys(f.statefulSets)))
			}
		})
	}
}

// The decoding is strict: a misspelt field anywhere fails the test (kustomize itself keeps it,
// and the API server would drop it silently or refuse the object).
func TestKubernetesStrictDecoding(t *testing.T) {
	for _, tc := range []struct {
		file, from, to, want string
	}{
		{"base/sending/statefulset.yaml", "readOnlyRootFilesystem:", "readOnlyRootFileSystem:", "readOnlyRootFileSystem"},
		{"base/receiving/service.yaml", "targetPort:", "targetport:", "targetport"},
		{"base/coordination/backup.yaml", "concurrencyPolicy:", "concurencyPolicy:", "concurencyPolicy"},
		{"base/receiving/networkpolicy.yaml", "policyTypes:", "policyType:", "policyType"},
		{"base/namespace/namespace.yaml", "labels:", "label:", "label"},
		{"base/sending/statefulset.yaml", "replicas: 1", "replicas: one", "replicas"},
	} {
		t.Run(tc.file+"/"+tc.want, func(t *testing.T) {
			dir := scratchCopy(t)
			p := filepath.Join(dir, tc.file)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte(tc.from)) {
				t.Fatalf("%s has no %q", tc.file, tc.from)
			}
			if err := os.WriteFile(p, bytes.Replace(b, []byte(tc.from), []byte(tc.to), 1), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = render(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("render with %q in %s: %v, want an error naming %s", tc.to, tc.file, err, tc.want)
			}
		})
	}
}

// notYet are flags the manifests set that another change is adding to the daemon; the check
// of the variable is skipped until the daemon has the flag (then it is checked as any other).
var notYet = map[string]bool{"LABOURLINK_METRICS_ADDR": true,
	// The replicated coordination (docs/replication.md).
	"LABOURLINK_REPLICATION": true, "LABOURLINK_REPLICA_NAME": true, "LABOURLINK_NATS_LISTEN": true,
	"LABOURLINK_NATS_CLUSTER": true, "LABOURLINK_NATS_ROUTES": true, "LABOURLINK_NATS_REPLICAS": true,
}

// settings are the LABOURLINK_* variables a container of pod podName gets: from the ConfigMaps
// it names (envFrom) and its own env (plain values, or the pod's name).
func (f *federation) settings(t *testing.T, c corev1.Container, podName string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil || from.Prefix != "" {
			t.Errorf("container %s: envFrom %+v: only whole ConfigMaps", c.Name, from)
			continue
		}
		cm, ok := f.configMaps[from.ConfigMapRef.Name]
		if !ok {
			t.Errorf("container %s: no ConfigMap %s", c.Name, from.ConfigMapRef.Name)
			continue
		}
		maps.Copy(env, cm.Data)
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			if e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name" {
				env[e.Name] = podName
				continue
			}
			t.Errorf("env %s: plain values or the pod's name only", e.Name)
		}
		env[e.Name] = e.Value
	}
	return env
}

// withoutPending drops the notYet variables whose flag the service of kind k does not have yet.
func withoutPending(t *testing.T, k daemon.Kind, env map[string]string) map[string]string {
	out := maps.Clone(env)
	for name := range notYet {
		v, ok := out[name]
		if !ok {
			continue
		}
		f, _ := flagOf(name)
		if _, err := daemon.ParseFlags(k, "check", []string{"-" + f + "=" + v}, io.Discard); err != nil && strings.Contains(err.Error(), "flag provided but not defined") {
			t.Logf("%s: the %s service has no -%s yet; not checked", name, k, f)
			delete(out, name)
		}
	}
	return out
}

func selects(t *testing.T, sel *metav1.LabelSelector, l map[string]string) bool {
	t.Helper()
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Errorf("selector %v: %v", sel, err)
		return false
	}
	return s.Matches(labels.Set(l))
}

// checkFederation checks the rendered federation: the namespace and its default deny, each
// service's StatefulSet, Service, settings, certificates, scheduled backup and network policy,
// and who can reach whom.
func checkFederation(t *testing.T, f *federation, certs string, want map[daemon.Kind]int) {
	t.Helper()
	ns, ok := f.namespaces["labourlink"]
	if !ok || len(f.namespaces) != 1 {
		t.Fatalf("want the namespace labourlink, got %v", slices.Sorted(maps.Keys(f.namespaces)))
	}
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("namespace labels %v: the restricted pod security profile", ns.Labels)
	}
	for _, m := range []map[string]metav1.Object{
		objects(f.services), objects(f.configMaps), objects(f.secrets), objects(f.claims),
		objects(f.statefulSets), objects(f.cronJobs), objects(f.policies),
	} {
		for name, o := range m {
			if o.GetNamespace() != "labourlink" {
				t.Errorf("%s is in namespace %q, not labourlink", name, o.GetNamespace())
			}
		}
	}
	ca := f.generated("labourlink-ca")
	if ca == nil {
		t.Fatalf("no Secret labourlink-ca-HASH: %v", slices.Sorted(maps.Keys(f.secrets)))
	}
	if got := slices.Sorted(maps.Keys(ca.Data)); !slices.Equal(got, []string{"ca.pem"}) {
		t.Errorf("labourlink-ca holds %v", got)
	}

	seen := map[daemon.Kind]int{}
	var pods []pod
	for name, ss := range f.statefulSets {
		t.Run(name, func(t *testing.T) {
			k, cfg := checkStatefulSet(t, f, ss, certs)
			seen[k]++
			pods = append(pods, pod{name: name, labels: ss.Spec.Template.Labels, kind: k, region: cfg.Region, ports: namedPorts(ss.Spec.Template.Spec)})
			cj, ok := f.cronJobs["backup-"+name]
			if !ok {
				t.Errorf("no CronJob backup-%s", name)
				return
			}
			checkBackupJob(t, f, cj, ss, k, cfg, certs)
			pods = append(pods, pod{name: cj.Name, labels: cj.Spec.JobTemplate.Spec.Template.Labels, backup: true})
		})
	}
	if !maps.Equal(seen, want) {
		t.Errorf("services %v, want %v", seen, want)
	}
	if len(f.cronJobs) != len(f.statefulSets) || len(f.services) != len(f.statefulSets) {
		t.Errorf("%d StatefulSets, %d Services, %d CronJobs: one each per service", len(f.statefulSets), len(f.services), len(f.cronJobs))
	}
	checkNetworkPolicies(t, f, ns, pods)
}

func objects[T metav1.Object](m map[string]T) map[string]metav1.Object {
	out := map[string]metav1.Object{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// namedPorts are the container ports of a pod by name.
func namedPorts(spec corev1.PodSpec) map[string]int32 {
	ports := map[string]int32{}
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			ports[p.Name] = p.ContainerPort
		}
	}
	return ports
}

// mountedSecret returns the Secret holding file (a path in a read-only secret mount of c).
func mountedSecret(t *testing.T, f *federation, spec corev1.PodSpec, c corev1.Container, file string) *corev1.Secret {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if m.MountPath != filepath.Dir(file) {
			continue
		}
		if !m.ReadOnly {
			t.Errorf("%s is in a writable mount", file)
		}
		for _, v := range spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			if v.Secret == nil {
				t.Errorf("%s is in volume %s, not a Secret", file, v.Name)
				return nil
			}
			s, ok := f.secrets[v.Secret.SecretName]
			if !ok {
				t.Errorf("%s: the Secret %s is not made by the kustomization", file, v.Secret.SecretName)
				return nil
			}
			if _, ok := s.Data[filepath.Base(file)]; !ok {
				t.Errorf("%s: the Secret %s holds %v", file, s.Name, slices.Sorted(maps.Keys(s.Data)))
			}
			return s
		}
	}
	t.Errorf("%s is not in a mounted volume of container %s", file, c.Name)
	return nil
}

// holdsIdentity checks that Secret s holds the certificate and key of id (tls.pem, tls-key.pem),
// the files of that identity in certs.
func holdsIdentity(t *testing.T, s *corev1.Secret, certs string, id identity.Identity) {
	t.Helper()
	if s == nil {
		return
	}
	cert, key := identity.Paths(certs, id)
	for name, file := range map[string]string{"tls.pem": cert, "tls-key.pem": key} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(s.Data[name], b) {
			t.Errorf("Secret %s: %s is not %s (the certificate of %v)", s.Name, name, filepath.Base(file), id)
		}
	}
}

func checkStatefulSet(t *testing.T, f *federation, ss *appsv1.StatefulSet, certs string) (daemon.Kind, daemon.Config) {
	name := ss.Name
	tmpl := ss.Spec.Template
	replicated := false
	for _, c := range tmpl.Spec.Containers {
		replicated = replicated || f.settings(t, c, name+"-0")["LABOURLINK_REPLICATION"] == "nats"
	}
	if !replicated && (ss.Spec.Replicas == nil || *ss.Spec.Replicas != 1) {
		t.Errorf("replicas %v: one writer per bbolt file", ss.Spec.Replicas)
	}
	if !selects(t, ss.Spec.Selector, tmpl.Labels) {
		t.Errorf("selector %v does not match the pod labels %v", ss.Spec.Selector, tmpl.Labels)
	}
	svc, ok := f.services[ss.Spec.ServiceName]
	if !ok || ss.Spec.ServiceName != name {
		t.Fatalf("serviceName %q: want a Service named %s", ss.Spec.ServiceName, name)
	}
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(tmpl.Labels)) {
		t.Errorf("Service %s selects %v, not these pods %v", name, svc.Spec.Selector, tmpl.Labels)
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("Service %s is not headless: the name is the pod's", name)
	}
	checkPodSecurity(t, tmpl.Spec)
	if len(tmpl.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(tmpl.Spec.Containers))
	}
	c := tmpl.Spec.Containers[0]
	k := daemon.Kind(c.Name)
	if !slices.Contains(daemon.Kinds, k) || !strings.HasPrefix(name, string(k)) {
		t.Errorf("container %q: want the service kind of %s", k, name)
	}
	if !slices.Equal(c.Args, []string{"serve", string(k)}) || c.Image == "" {
		t.Errorf("image %q args %v: want the labourlink image with serve %s", c.Image, c.Args, k)
	}

	// The settings: every variable is a flag of the service and the service accepts them.
	env := f.settings(t, c, name+"-0")
	cfg := parseSettings(t, name, k, withoutPending(t, k, env))
	if want := name + ".labourlink.svc.cluster.local"; !strings.HasPrefix(cfg.Advertise, want+":") {
		t.Errorf("advertises %s, want %s:PORT (its Service, in its certificate by -hosts '{name}.labourlink.svc.cluster.local')", cfg.Advertise, want)
	}
	if k != daemon.Coordination && !strings.HasPrefix(cfg.Coordination, "coordination.labourlink.svc.cluster.local:") && !isCoordinationNodes(f, cfg.Coordination) {
		t.Errorf("coordination address %s: the coordination Service, or each node of a replicated coordination", cfg.Coordination)
	}
	if k != daemon.Coordination && name != string(k)+"-"+cfg.Region {
		t.Errorf("region %s in %s", cfg.Region, name)
	}
	if k != daemon.Coordination && tmpl.Labels["labourlink.eastwest/region"] != cfg.Region {
		t.Errorf("pod label labourlink.eastwest/region %q, region %s (the network policies select by it)", tmpl.Labels["labourlink.eastwest/region"], cfg.Region)
	}

	// Ports: the gRPC, health, metrics and HTTP/JSON ports are container ports; the probes ask
	// the health port with gRPC; the Service forwards to the gRPC, metrics and HTTP ports.
	ports := namedPorts(tmpl.Spec)
	if int(ports["grpc"]) != port(t, name, cfg.Listen) || ports["grpc"] == 0 {
		t.Errorf("container port grpc %d, listen %s", ports["grpc"], cfg.Listen)
	}
	if cfg.HealthListen == "" || int(ports["health"]) != port(t, name, cfg.HealthListen) {
		t.Errorf("container port health %d, health listen %q", ports["health"], cfg.HealthListen)
	}
	if m := env["LABOURLINK_METRICS_ADDR"]; m == "" || int(ports["metrics"]) != port(t, name, m) {
		t.Errorf("container port metrics %d, LABOURLINK_METRICS_ADDR %q", ports["metrics"], m)
	}
	if cfg.HTTPAddr == "" || int(ports["http"]) != port(t, name, cfg.HTTPAddr) {
		t.Errorf("container port http %d, HTTP/JSON listener %q (LABOURLINK_HTTP_ADDR)", ports["http"], cfg.HTTPAddr)
	}
	if cfg.HTTPAddr != "" && !cfg.TLS.Enabled() {
		t.Errorf("the HTTP/JSON listener %s is served without mTLS", cfg.HTTPAddr)
	}
	for probe, p := range map[string]*corev1.Probe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe, "startupProbe": c.StartupProbe} {
		if p == nil || p.GRPC == nil {
			t.Errorf("%s is not a grpc probe: %+v", probe, p)
			continue
		}
		if p.GRPC.Port != ports["health"] {
			t.Errorf("%s asks port %d, not the health port %d", probe, p.GRPC.Port, ports["health"])
		}
	}
	svcPorts := map[string]corev1.ServicePort{}
	for _, sp := range svc.Spec.Ports {
		svcPorts[sp.Name] = sp
		if sp.TargetPort.String() != sp.Name || ports[sp.Name] == 0 {
			t.Errorf("Service %s port %s targets %v, want the container port of that name", name, sp.Name, sp.TargetPort.String())
		}
		if sp.Port != ports[sp.Name] {
			t.Errorf("Service %s port %s is %d, the container's %d", name, sp.Name, sp.Port, ports[sp.Name])
		}
	}
	if _, ok := svcPorts["grpc"]; !ok || int(svcPorts["grpc"].Port) != port(t, name, cfg.Advertise) {
		t.Errorf("the advertised port of %s is not the Service's grpc port %v", cfg.Advertise, svcPorts["grpc"])
	}

	// Volumes: the data folder is the claim template's mount; the TLS files are in read-only
	// secret mounts, the secrets being the CA and this service's certificate.
	claims := map[string]bool{}
	for _, vc := range ss.Spec.VolumeClaimTemplates {
		claims[vc.Name] = true
		if vc.Spec.Resources.Requests.Storage().IsZero() {
			t.Errorf("volume claim %s has no storage request", vc.Name)
		}
	}
	data := false
	for _, m := range c.VolumeMounts {
		data = data || (m.MountPath == cfg.DataDir && claims[m.Name])
	}
	if !data {
		t.Errorf("the data folder %s is not a mounted volume claim", cfg.DataDir)
	}
	if !cfg.TLS.Enabled() {
		t.Fatal("the service runs without TLS")
	}
	if s := mountedSecret(t, f, tmpl.Spec, c, cfg.TLS.CAFile); s != nil && s.Name != f.generated("labourlink-ca").Name {
		t.Errorf("the CA file is in Secret %s", s.Name)
	}
	tls := mountedSecret(t, f, tmpl.Spec, c, cfg.TLS.CertFile)
	if key := mountedSecret(t, f, tmpl.Spec, c, cfg.TLS.KeyFile); key != tls {
		t.Error("the certificate and its key are in different Secrets")
	}
	holdsIdentity(t, tls, certs, daemon.Self(cfg))
	if replicated {
		checkReplicated(t, f, ss, c, env, tls)
	}
	return k, cfg
}

func checkPodSecurity(t *testing.T, spec corev1.PodSpec) {
	t.Helper()
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("the pods need no service account token")
	}
	sc := spec.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("pod securityContext: runAsNonRoot and RuntimeDefault seccomp are required")
	}
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("container %s securityContext: no privilege escalation, read-only root, all capabilities dropped", c.Name)
		}
		if c.Resources.Limits.Memory().IsZero() {
			t.Errorf("container %s has no memory limit", c.Name)
		}
	}
}

// checkBackupJob checks the scheduled backup of the service of StatefulSet ss: `labourlink
// backup` (flags of the CLI) of that service at its advertised address, with a certificate that
// may take the backup, into the job's own volume claim, the clean-up only after it.
func checkBackupJob(t *testing.T, f *federation, cj *batchv1.CronJob, ss *appsv1.StatefulSet, k daemon.Kind, cfg daemon.Config, certs string) {
	t.Helper()
	if len(strings.Fields(cj.Spec.Schedule)) != 5 {
		t.Errorf("CronJob %s schedule %q: want minute hour day month weekday", cj.Name, cj.Spec.Schedule)
	}
	if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
		t.Errorf("CronJob %s: concurrencyPolicy %q, want Forbid (one backup at a time)", cj.Name, cj.Spec.ConcurrencyPolicy)
	}
	spec := cj.Spec.JobTemplate.Spec.Template.Spec
	checkPodSecurity(t, spec)
	if len(spec.InitContainers) != 1 || len(spec.Containers) != 1 {
		t.Fatalf("CronJob %s: want the backup as the init container and the clean-up after it", cj.Name)
	}
	c := spec.InitContainers[0]
	if c.Image != ss.Spec.Template.Spec.Containers[0].Image {
		t.Errorf("the backup runs image %s, the service %s", c.Image, ss.Spec.Template.Spec.Containers[0].Image)
	}
	// $(VAR) in the arguments is the container's variable, as the kubelet expands it.
	vars := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			if ss.Spec.Template.Spec.Containers[0].EnvFrom[0].ConfigMapRef.Name != ref.Name {
				t.Errorf("env %s is from ConfigMap %s, not the service's", e.Name, ref.Name)
			}
			vars[e.Name] = f.configMaps[ref.Name].Data[ref.Key]
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			if e.ValueFrom.FieldRef.FieldPath != "metadata.labels['batch.kubernetes.io/job-name']" {
				t.Errorf("env %s from %s", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
			vars[e.Name] = cj.Name + "-29000000"
		default:
			vars[e.Name] = e.Value
		}
	}
	var args []string
	for _, a := range c.Args {
		for name, v := range vars {
			a = strings.ReplaceAll(a, "$("+name+")", v)
		}
		args = append(args, a)
	}
	if len(args) == 0 || args[0] != "backup" {
		t.Fatalf("the backup container runs %v, want labourlink backup", c.Args)
	}
	flags := cliFlags(t, "backup", args[1:])
	if flags["service"] != string(k) {
		t.Errorf("-service %q, want %s", flags["service"], k)
	}
	if flags["addr"] != cfg.Advertise {
		t.Errorf("-addr %q, want the service's advertised address %s", flags["addr"], cfg.Advertise)
	}
	if s := mountedSecret(t, f, spec, c, flags["tls-ca"]); s != nil && s.Name != f.generated("labourlink-ca").Name {
		t.Errorf("-tls-ca is in Secret %s", s.Name)
	}
	client := mountedSecret(t, f, spec, c, flags["tls-cert"])
	if key := mountedSecret(t, f, spec, c, flags["tls-key"]); key != client || client == nil {
		t.Fatal("the client certificate and its key are not in one Secret")
	}
	// The certificate is one that may take the backup (services/platform/authz).
	var caller identity.Identity
	candidates := []identity.Identity{identity.Operator("", true)}
	if cfg.Region != "" {
		candidates = append(candidates, identity.System(cfg.Region), identity.Operator(cfg.Region, true))
	}
	for _, id := range candidates {
		if cert, _ := identity.Paths(certs, id); bytes.Equal(client.Data["tls.pem"], mustRead(t, cert)) {
			caller = id
		}
	}
	if caller.Role == "" {
		t.Fatalf("Secret %s holds no system or full operator certificate", client.Name)
	}
	holdsIdentity(t, client, certs, caller)
	az, err := authz.New(daemon.Self(cfg), authz.DefaultPairings())
	if err != nil {
		t.Fatal(err)
	}
	if err := az.Authorize(context.Background(), backupv1.BackupService_Backup_FullMethodName, caller, &backupv1.BackupRequest{}); err != nil {
		t.Errorf("the backup's certificate %v may not take the backup: %v", caller, err)
	}
	// The file: in the job's own volume claim, named by the scheduled run (unique per run).
	out := flags["o"]
	if !strings.Contains(out, cj.Name+"-29000000") {
		t.Errorf("-o %s is not named by the job (one file per run)", out)
	}
	claim := claimAt(t, spec, c, filepath.Dir(out))
	if pvc, ok := f.claims[claim]; !ok || !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteOnce) {
		t.Errorf("the backups' volume claim %q is not made by the kustomization", claim)
	}
	prune := spec.Containers[0]
	if claimAt(t, spec, prune, filepath.Dir(out)) != claim {
		t.Error("the clean-up does not see the backups' folder")
	}
	if !slices.Contains(prune.Command, "-mtime") || !slices.Contains(prune.Command, "-delete") {
		t.Errorf("the clean-up %v does not delete files older than the kept days", prune.Command)
	}
}

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// claimAt is the volume claim mounted at dir in container c, or "".
func claimAt(t *testing.T, spec corev1.PodSpec, c corev1.Container, dir string) string {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if m.MountPath != dir || m.ReadOnly {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.PersistentVolumeClaim != nil {
				return v.PersistentVolumeClaim.ClaimName
			}
		}
	}
	t.Errorf("%s is not a writable volume claim of container %s", dir, c.Name)
	return ""
}

// cliFlags parses args as the flags of `labourlink CMD` (the flags the CLI prints for -h): an
// unknown flag is an error. It returns flag -> value.
func cliFlags(t *testing.T, cmd string, args []string) map[string]string {
	t.Helper()
	known := cliFlagNames(t, cmd)
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	values := map[string]*string{}
	for _, name := range known {
		values[name] = fs.String(name, "", "")
	}
	if err := fs.Parse(args); err != nil {
		t.Errorf("labourlink %s %v: %v (its flags: %v)", cmd, args, err, known)
	}
	if fs.NArg() > 0 {
		t.Errorf("labourlink %s %v: arguments after the flags %v", cmd, args, fs.Args())
	}
	out := map[string]string{}
	fs.Visit(func(fl *flag.Flag) { out[fl.Name] = *values[fl.Name] })
	return out
}

var cliHelp = struct {
	sync.Mutex
	flags map[string][]string
}{flags: map[string][]string{}}

// cliFlagNames are the flags `go run ./cmd/labourlink CMD -h` lists (once per command and test run).
func cliFlagNames(t *testing.T, cmd string) []string {
	t.Helper()
	cliHelp.Lock()
	defer cliHelp.Unlock()
	if names, ok := cliHelp.flags[cmd]; ok {
		return names
	}
	out, _ := exec.Command("go", "run", "../cmd/labourlink", cmd, "-h").CombinedOutput() // -h exits 0 or 2
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "  -"); ok {
			names = append(names, strings.Fields(rest)[0])
		}
	}
	if len(names) == 0 {
		t.Fatalf("labourlink %s -h lists no flags:\n%s", cmd, out)
	}
	cliHelp.flags[cmd] = names
	return names
}

// pod is a pod the manifests make, for the network checks.
type pod struct {
	name   string
	labels map[string]string
	kind   daemon.Kind // "" for a backup job
	region string
	backup bool
	ports  map[string]int32
}

// peer is a party connecting to a pod: a pod of the labourlink namespace or of another one.
type peer struct {
	name      string
	nsLabels  map[string]string
	podLabels map[string]string
	sameNS    bool
}

// admits says whether the network policies let from connect to port (a container port name) of
// target: with a policy selecting the pod, only what one of them admits (NetworkPolicy
// semantics; the policies use no ipBlock).
func admits(t *testing.T, policies map[string]*networkingv1.NetworkPolicy, target pod, portName string, from peer) bool {
	t.Helper()
	for _, p := range policies {
		if !selects(t, &p.Spec.PodSelector, target.labels) {
			continue
		}
		for _, rule := range p.Spec.Ingress {
			portOK := len(rule.Ports) == 0
			for _, rp := range rule.Ports {
				portOK = portOK || rp.Port == nil || rp.Port.String() == portName || rp.Port.IntVal != 0 && rp.Port.IntVal == target.ports[portName]
			}
			if !portOK {
				continue
			}
			if len(rule.From) == 0 {
				return true
			}
			for _, pe := range rule.From {
				if pe.IPBlock != nil {
					t.Errorf("policy %s: an ipBlock (pods move; select by labels)", p.Name)
				}
				switch {
				case pe.NamespaceSelector != nil:
					if selects(t, pe.NamespaceSelector, from.nsLabels) && (pe.PodSelector == nil || selects(t, pe.PodSelector, from.podLabels)) {
						return true
					}
				case pe.PodSelector != nil:
					if from.sameNS && selects(t, pe.PodSelector, from.podLabels) {
						return true
					}
				}
			}
		}
	}
	return false
}

// checkNetworkPolicies: ingress is denied in the namespace unless a service's policy admits it;
// each service admits exactly who must call it (the call graph of docs/production.md): a
// receiving service its paired sending services, coordination every province's service,
// nobody of the federation a sending service; every service its backup job, the clients'
// namespaces (labourlink.eastwest/clients=true), and Prometheus (namespace monitoring) on the
// metrics port only.
func checkNetworkPolicies(t *testing.T, f *federation, ns *corev1.Namespace, pods []pod) {
	t.Helper()
	deny, ok := f.policies["default-deny-ingress"]
	if !ok || len(deny.Spec.PodSelector.MatchLabels)+len(deny.Spec.PodSelector.MatchExpressions) != 0 ||
		!slices.Equal(deny.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) || len(deny.Spec.Ingress) != 0 {
		t.Errorf("no default-deny-ingress policy selecting every pod: %+v", deny)
	}
	nsLabels := maps.Clone(ns.Labels)
	nsLabels["kubernetes.io/metadata.name"] = ns.Name
	pairs := regions.DefaultPairings()
	others := []struct {
		peer
		grpc, metrics, http bool
	}{
		{peer{name: "a client namespace", nsLabels: map[string]string{"kubernetes.io/metadata.name": "labourlink-operators", "labourlink.eastwest/clients": "true"}}, true, false, true},
		{peer{name: "the monitoring namespace", nsLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"}}, false, true, false},
		{peer{name: "another namespace", nsLabels: map[string]string{"kubernetes.io/metadata.name": "default"}}, false, false, false},
		{peer{name: "another pod of the namespace", nsLabels: nsLabels, podLabels: map[string]string{"app": "debug"}, sameNS: true}, false, false, false},
	}
	for _, target := range pods {
		if target.backup {
			for _, p := range f.policies {
				if p.Name != deny.Name && selects(t, &p.Spec.PodSelector, target.labels) {
					t.Errorf("policy %s selects the backup job %s", p.Name, target.name)
				}
			}
			continue
		}
		n := 0
		for _, p := range f.policies {
			if p.Name != deny.Name && selects(t, &p.Spec.PodSelector, target.labels) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: %d policies of its own select it, want 1", target.name, n)
		}
		for _, from := range pods {
			if from.name == target.name {
				continue
			}
			p := peer{name: from.name, nsLabels: nsLabels, podLabels: from.labels, sameNS: true}
			var want bool
			switch {
			case from.backup:
				want = true // the namespace's backup jobs (each with a certificate that may back up its own service only)
			case target.kind == daemon.Coordination:
				want = from.kind == daemon.Sending || from.kind == daemon.Receiving
			case target.kind == daemon.Receiving:
				want = from.kind == daemon.Sending && slices.Contains(pairs, regions.Pairing{Receiving: target.region, Sending: from.region})
			}
			if got := admits(t, f.policies, target, "grpc", p); got != want {
				t.Errorf("%s -> %s gRPC: admitted %v, want %v", from.name, target.name, got, want)
			}
			if admits(t, f.policies, target, "metrics", p) {
				t.Errorf("%s -> %s metrics: admitted", from.name, target.name)
			}
			if admits(t, f.policies, target, "http", p) {
				t.Errorf("%s -> %s HTTP/JSON: admitted (the federation's services call each other over gRPC)", from.name, target.name)
			}
		}
		for _, o := range others {
			if got := admits(t, f.policies, target, "grpc", o.peer); got != o.grpc {
				t.Errorf("%s -> %s gRPC: admitted %v, want %v", o.name, target.name, got, o.grpc)
			}
			if got := admits(t, f.policies, target, "metrics", o.peer); got != o.metrics {
				t.Errorf("%s -> %s metrics: admitted %v, want %v", o.name, target.name, got, o.metrics)
			}
			if got := admits(t, f.policies, target, "http", o.peer); got != o.http {
				t.Errorf("%s -> %s HTTP/JSON: admitted %v, want %v", o.name, target.name, got, o.http)
			}
		}
	}
}

// The container build and the README point at files that exist.
func TestReferencedPaths(t *testing.T) {
	for _, p := range []string{"../cmd/labourlink", "README.md", "Containerfile"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"certs init", "certs issue", "kubectl apply -k", "systemctl", "LoadDefaultPairings", "CreatePairing"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("README.md does not mention %s", want)
		}
	}
}
