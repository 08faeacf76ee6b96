package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/eastwest/labourlink/services/codes/regions"
	"github.com/eastwest/labourlink/services/daemon"
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
	"Service": {"Type", "ExecStart", "ExecReload", "EnvironmentFile", "Environment", "LoadCredential", "Restart", "RestartSec",
		"TimeoutStopSec", "KillMode", "KillSignal", "DynamicUser", "User", "Group", "StateDirectory", "StateDirectoryMode", "UMask",
		"NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "ProtectKernelTunables",
		"ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock", "ProtectHostname", "ProtectProc",
		"RestrictAddressFamilies", "RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID", "LockPersonality",
		"MemoryDenyWriteExecute", "SystemCallArchitectures", "SystemCallFilter", "SystemCallErrorNumber",
		"CapabilityBoundingSet", "AmbientCapabilities", "LimitNOFILE"},
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
		t.Run(filepath.Base(file), func(t *testing.T) {
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			u, err := parseUnit(f)
			if err != nil {
				t.Fatal(err)
			}
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
				ef, err := os.Open(envFile)
				if err != nil {
					t.Fatal(err)
				}
				env, err := parseEnvFile(ef)
				ef.Close()
				if err != nil {
					t.Fatalf("%s: %v", envFile, err)
				}
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
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		env, err := parseEnvFile(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
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

type doc = map[string]any

func get(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(doc)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func str(v any, path ...string) string {
	s, _ := get(v, path...).(string)
	return s
}

func list(v any, path ...string) []any {
	l, _ := get(v, path...).([]any)
	return l
}

func integer(v any, path ...string) (int, bool) {
	n, ok := get(v, path...).(int)
	return n, ok
}

// readManifests parses every YAML document of the Kubernetes manifests.
func readManifests(t *testing.T) (map[string][]doc, doc) {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]doc{}
	var kustomization doc
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var d doc
			err := dec.Decode(&d)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if d == nil {
				continue
			}
			if filepath.Base(f) == "kustomization.yaml" {
				kustomization = d
				continue
			}
			out[filepath.Base(f)] = append(out[filepath.Base(f)], d)
		}
	}
	if kustomization == nil {
		t.Fatal("no kubernetes/kustomization.yaml")
	}
	return out, kustomization
}

func labelsMatch(selector, labels any) bool {
	sel, _ := selector.(doc)
	lab, _ := labels.(doc)
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if lab[k] != v {
			return false
		}
	}
	return true
}

func TestKubernetesManifests(t *testing.T) {
	manifests, kust := readManifests(t)

	// kustomization: every manifest is a resource; the generated secrets are the certificate
	// files of the services' identities.
	var resources []string
	for _, r := range list(kust, "resources") {
		resources = append(resources, r.(string))
	}
	var files []string
	for f := range manifests {
		files = append(files, f)
	}
	sort.Strings(files)
	if got := slices.Sorted(slices.Values(resources)); !slices.Equal(got, files) {
		t.Errorf("kustomization resources %v, want every manifest %v", got, files)
	}
	if str(kust, "namespace") != "labourlink" {
		t.Errorf("kustomization namespace %q", str(kust, "namespace"))
	}
	secrets := map[string][]string{}
	for _, s := range list(kust, "secretGenerator") {
		var fs []string
		for _, f := range list(s, "files") {
			fs = append(fs, f.(string))
		}
		secrets[str(s, "name")] = fs
	}
	if !slices.Equal(secrets["labourlink-ca"], []string{"ca.pem=certs/" + identity.CAFile}) {
		t.Errorf("labourlink-ca secret: %v", secrets["labourlink-ca"])
	}

	services := map[string]doc{}
	var sets []doc
	kinds := map[string]int{}
	for f, docs := range manifests {
		for _, d := range docs {
			kind, name := str(d, "kind"), str(d, "metadata", "name")
			if str(d, "apiVersion") == "" || kind == "" || name == "" {
				t.Errorf("%s: a document without apiVersion, kind or metadata.name", f)
				continue
			}
			kinds[kind]++
			if kind != "Namespace" && str(d, "metadata", "namespace") != "labourlink" {
				t.Errorf("%s: %s %s is not in the labourlink namespace", f, kind, name)
			}
			switch kind {
			case "Service":
				services[name] = d
			case "StatefulSet":
				sets = append(sets, d)
				if f != name+".yaml" {
					t.Errorf("StatefulSet %s is in %s, want %s.yaml", name, f, name)
				}
			case "Namespace":
			default:
				t.Errorf("%s: unexpected kind %s", f, kind)
			}
		}
	}
	if kinds["StatefulSet"] != 5 || kinds["Service"] != 5 || kinds["Namespace"] != 1 {
		t.Errorf("want 5 StatefulSets, 5 Services and a Namespace, got %v", kinds)
	}

	regionalSeen := map[daemon.Kind]int{}
	for _, ss := range sets {
		name := str(ss, "metadata", "name")
		t.Run(name, func(t *testing.T) {
			checkStatefulSet(t, ss, services, secrets)
			k := daemon.Kind(strings.Split(name, "-")[0])
			regionalSeen[k]++
		})
	}
	if regionalSeen[daemon.Coordination] != 1 || regionalSeen[daemon.Sending] != 2 || regionalSeen[daemon.Receiving] != 2 {
		t.Errorf("the example federation needs coordination, two sending and two receiving services: %v", regionalSeen)
	}
}

func checkStatefulSet(t *testing.T, ss doc, services map[string]doc, secrets map[string][]string) {
	name := str(ss, "metadata", "name")
	if r, ok := integer(ss, "spec", "replicas"); !ok || r != 1 {
		t.Errorf("replicas %v: one writer per bbolt file", get(ss, "spec", "replicas"))
	}
	tmpl := get(ss, "spec", "template")
	podLabels := get(tmpl, "metadata", "labels")
	if !labelsMatch(get(ss, "spec", "selector", "matchLabels"), podLabels) {
		t.Errorf("selector %v does not match the pod labels %v", get(ss, "spec", "selector", "matchLabels"), podLabels)
	}
	svc, ok := services[str(ss, "spec", "serviceName")]
	if !ok || str(ss, "spec", "serviceName") != name {
		t.Fatalf("serviceName %q: want a Service named %s", str(ss, "spec", "serviceName"), name)
	}
	if !labelsMatch(get(svc, "spec", "selector"), podLabels) {
		t.Errorf("Service %s selects %v, not these pods %v", name, get(svc, "spec", "selector"), podLabels)
	}
	if v, _ := get(tmpl, "spec", "automountServiceAccountToken").(bool); v {
		t.Error("the pods need no service account token")
	}
	if get(tmpl, "spec", "securityContext", "runAsNonRoot") != true || str(tmpl, "spec", "securityContext", "seccompProfile", "type") != "RuntimeDefault" {
		t.Error("pod securityContext: runAsNonRoot and RuntimeDefault seccomp are required")
	}

	containers := list(tmpl, "spec", "containers")
	if len(containers) != 1 {
		t.Fatalf("%d containers, want 1", len(containers))
	}
	c := containers[0]
	k := daemon.Kind(str(c, "name"))
	if !slices.Contains(daemon.Kinds, k) || !strings.HasPrefix(name, string(k)) {
		t.Errorf("container %q: want the service kind of %s", k, name)
	}
	var args []string
	for _, a := range list(c, "args") {
		args = append(args, fmt.Sprint(a))
	}
	if !slices.Equal(args, []string{"serve", string(k)}) || str(c, "image") == "" {
		t.Errorf("image %q args %v: want the labourlink image with serve %s", str(c, "image"), args, k)
	}
	if get(c, "securityContext", "allowPrivilegeEscalation") != false || get(c, "securityContext", "readOnlyRootFilesystem") != true ||
		!slices.Equal(list(c, "securityContext", "capabilities", "drop"), []any{"ALL"}) {
		t.Error("container securityContext: no privilege escalation, read-only root, all capabilities dropped")
	}

	// The settings: every variable is a flag of the service and the service accepts them.
	env := map[string]string{}
	for _, e := range list(c, "env") {
		if get(e, "valueFrom") != nil {
			t.Errorf("env %s: plain values only", str(e, "name"))
		}
		v := get(e, "value")
		if _, ok := v.(string); !ok {
			t.Errorf("env %s: value %v (%T) must be a string (quote numbers and booleans)", str(e, "name"), v, v)
		}
		env[str(e, "name")] = fmt.Sprint(v)
	}
	cfg := parseSettings(t, name, k, env)
	if want := name + ".labourlink.svc.cluster.local"; !strings.HasPrefix(cfg.Advertise, want+":") {
		t.Errorf("advertises %s, want %s:PORT (its Service, in its certificate by -hosts '{name}.labourlink.svc.cluster.local')", cfg.Advertise, want)
	}
	if k != daemon.Coordination && !strings.HasPrefix(cfg.Coordination, "coordination.labourlink.svc.cluster.local:") {
		t.Errorf("coordination address %s", cfg.Coordination)
	}
	if k != daemon.Coordination && name != string(k)+"-"+cfg.Region {
		t.Errorf("region %s in %s", cfg.Region, name)
	}

	// Ports: the gRPC port and the health port are container ports; the probes ask the health
	// port with gRPC; the Service forwards to the gRPC port.
	ports := map[string]int{}
	for _, p := range list(c, "ports") {
		n, _ := integer(p, "containerPort")
		ports[str(p, "name")] = n
	}
	if ports["grpc"] != port(t, name, cfg.Listen) || ports["grpc"] == 0 {
		t.Errorf("container port grpc %d, listen %s", ports["grpc"], cfg.Listen)
	}
	if cfg.HealthListen == "" || ports["health"] != port(t, name, cfg.HealthListen) {
		t.Errorf("container port health %d, health listen %q", ports["health"], cfg.HealthListen)
	}
	for _, probe := range []string{"readinessProbe", "livenessProbe", "startupProbe"} {
		p := get(c, probe)
		if probe != "startupProbe" && p == nil {
			t.Errorf("no %s", probe)
			continue
		}
		if p == nil {
			continue
		}
		n, ok := integer(p, "grpc", "port")
		if !ok {
			t.Errorf("%s is not a grpc probe with a numeric port: %v", probe, p)
			continue
		}
		if n != ports["health"] {
			t.Errorf("%s asks port %d, not the health port %d", probe, n, ports["health"])
		}
		if n == ports["grpc"] {
			t.Errorf("%s asks the mTLS port, which the kubelet cannot pass", probe)
		}
	}
	for _, sp := range list(svc, "spec", "ports") {
		target := get(sp, "targetPort")
		if target != "grpc" {
			t.Errorf("Service %s targets %v, want the container port grpc", name, target)
		}
		if n, _ := integer(sp, "port"); n != ports["grpc"] {
			t.Errorf("Service %s port %d, want %d (the port in the advertised address)", name, n, ports["grpc"])
		}
	}
	if port(t, name, cfg.Advertise) != ports["grpc"] {
		t.Errorf("advertised port of %s is not the gRPC port %d", cfg.Advertise, ports["grpc"])
	}

	// Volumes: the data folder is the claim template's mount; the TLS files are in read-only
	// secret mounts, the secrets being the CA and this service's certificate.
	volumes := map[string]any{}
	for _, v := range list(tmpl, "spec", "volumes") {
		volumes[str(v, "name")] = v
	}
	claims := map[string]bool{}
	for _, vc := range list(ss, "spec", "volumeClaimTemplates") {
		claims[str(vc, "metadata", "name")] = true
		if str(vc, "spec", "resources", "requests", "storage") == "" {
			t.Errorf("volume claim %s has no storage request", str(vc, "metadata", "name"))
		}
	}
	mounts := map[string]any{}
	for _, m := range list(c, "volumeMounts") {
		vn := str(m, "name")
		if volumes[vn] == nil && !claims[vn] {
			t.Errorf("mount %s names no volume or claim template", vn)
		}
		mounts[str(m, "mountPath")] = m
	}
	dataMount := mounts[cfg.DataDir]
	if dataMount == nil || !claims[str(dataMount, "name")] {
		t.Errorf("the data folder %s is not a mounted volume claim", cfg.DataDir)
	}
	self := daemon.Self(cfg)
	cert, key := identity.Paths("certs", self)
	wantSecrets := map[string][]string{
		"labourlink-ca": {"ca.pem"},
		name + "-tls":   {"tls.pem", "tls-key.pem"},
	}
	if got, want := secrets[name+"-tls"], []string{"tls.pem=" + cert, "tls-key.pem=" + key}; !slices.Equal(got, want) {
		t.Errorf("secret %s-tls is made of %v, want %v (the certificate of %v)", name, got, want, self)
	}
	for _, f := range []string{cfg.TLS.CAFile, cfg.TLS.CertFile, cfg.TLS.KeyFile} {
		m := mounts[filepath.Dir(f)]
		if m == nil || get(m, "readOnly") != true {
			t.Errorf("%s is not in a read-only mount", f)
			continue
		}
		v := volumes[str(m, "name")]
		secret := str(v, "secret", "secretName")
		if !slices.Contains(wantSecrets[secret], filepath.Base(f)) {
			t.Errorf("%s is in volume %s (secret %q), which does not hold it", f, str(m, "name"), secret)
		}
		if _, made := secrets[secret]; !made {
			t.Errorf("secret %s is not made by the kustomization", secret)
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
