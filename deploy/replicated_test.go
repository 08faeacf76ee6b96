package deploy

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/platform/identity"
	"github.com/eastwest/labourlink/services/platform/peers"
)

// The three-node coordination (kubernetes/replicated/, docs/replication.md): the example
// federation with coordination/ (an overlay of base/coordination) instead of
// overlays/coordination.

// replicatedCoordination is the StatefulSet of a replicated coordination in f, or nil.
func replicatedCoordination(t *testing.T, f *federation) *appsv1.StatefulSet {
	ss, ok := f.statefulSets["coordination"]
	if !ok || ss.Spec.Replicas == nil || *ss.Spec.Replicas < 2 {
		return nil
	}
	return ss
}

// nodeNames are the DNS names of the pods of ss (its headless Service's per-pod names).
func nodeNames(ss *appsv1.StatefulSet) []string {
	var names []string
	for i := range *ss.Spec.Replicas {
		names = append(names, fmt.Sprintf("%s-%d.%s.labourlink.svc.cluster.local", ss.Name, i, ss.Spec.ServiceName))
	}
	return names
}

// isCoordinationNodes says whether addr is the list of every node of the replicated
// coordination of f, at its gRPC port.
func isCoordinationNodes(f *federation, addr string) bool {
	ss := replicatedCoordination(nil, f)
	if ss == nil {
		return false
	}
	got, err := peers.SplitTargets(addr)
	if err != nil {
		return false
	}
	grpcPort := namedPorts(ss.Spec.Template.Spec)["grpc"]
	var want []string
	for _, n := range nodeNames(ss) {
		want = append(want, net.JoinHostPort(n, fmt.Sprint(grpcPort)))
	}
	return slices.Equal(got, want)
}

// checkReplicated checks the StatefulSet of a replicated coordination: three pods on three
// hosts, started together, at most one down by a disruption, routes between their per-pod
// names on a port only they reach, the client port of NATS on the loopback, the pod's name as
// the replica name, the ledger key from its Secret, and a certificate naming every node.
func checkReplicated(t *testing.T, f *federation, ss *appsv1.StatefulSet, c corev1.Container, env map[string]string, tls *corev1.Secret) {
	t.Helper()
	n := int32(3)
	if env["LABOURLINK_NATS_REPLICAS"] != "3" || ss.Spec.Replicas == nil || *ss.Spec.Replicas != n {
		t.Fatalf("replicas %v, LABOURLINK_NATS_REPLICAS %q: want 3 of each", ss.Spec.Replicas, env["LABOURLINK_NATS_REPLICAS"])
	}
	if ss.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("podManagementPolicy %q: Parallel (a lone first node waits for a quorum, so an ordered start never gets past it)", ss.Spec.PodManagementPolicy)
	}
	tmpl := ss.Spec.Template
	aff := tmpl.Spec.Affinity
	if aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) != 1 {
		t.Errorf("affinity %+v: want one required pod anti-affinity term", aff)
	} else {
		term := aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0]
		if term.TopologyKey != corev1.LabelHostname || !selects(t, term.LabelSelector, tmpl.Labels) {
			t.Errorf("anti-affinity %+v: want the pods' own labels on %s (never two nodes on one host)", term, corev1.LabelHostname)
		}
	}
	budgets := 0
	for name, b := range f.budgets {
		if !selects(t, b.Spec.Selector, tmpl.Labels) {
			continue
		}
		budgets++
		if b.Spec.MaxUnavailable == nil || b.Spec.MaxUnavailable.String() != "1" || b.Spec.MinAvailable != nil {
			t.Errorf("PodDisruptionBudget %s: maxUnavailable %v, minAvailable %v; want maxUnavailable 1", name, b.Spec.MaxUnavailable, b.Spec.MinAvailable)
		}
	}
	if budgets != 1 {
		t.Errorf("%d PodDisruptionBudgets select the coordination pods, want 1", budgets)
	}

	svc := f.services[ss.Spec.ServiceName]
	if svc == nil || !svc.Spec.PublishNotReadyAddresses {
		t.Errorf("Service %s: publishNotReadyAddresses (the nodes' names resolve while they find each other)", ss.Spec.ServiceName)
	}
	ports := namedPorts(tmpl.Spec)
	if ports["routes"] == 0 || int(ports["routes"]) != port(t, "LABOURLINK_NATS_CLUSTER", env["LABOURLINK_NATS_CLUSTER"]) {
		t.Errorf("container port routes %d, LABOURLINK_NATS_CLUSTER %q", ports["routes"], env["LABOURLINK_NATS_CLUSTER"])
	}
	var routes []string
	for _, name := range nodeNames(ss) {
		routes = append(routes, fmt.Sprintf("nats://%s:%d", name, ports["routes"]))
	}
	if got := env["LABOURLINK_NATS_ROUTES"]; got != strings.Join(routes, ",") {
		t.Errorf("LABOURLINK_NATS_ROUTES %q, want every node %q", got, strings.Join(routes, ","))
	}
	if host, _, err := net.SplitHostPort(env["LABOURLINK_NATS_LISTEN"]); err != nil || host != "127.0.0.1" {
		t.Errorf("LABOURLINK_NATS_LISTEN %q: the client port of the embedded NATS is the node's own (127.0.0.1): whoever reaches it can publish commands", env["LABOURLINK_NATS_LISTEN"])
	}
	named := false
	for _, e := range c.Env {
		named = named || e.Name == "LABOURLINK_REPLICA_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name"
	}
	if !named {
		t.Error("LABOURLINK_REPLICA_NAME is not the pod's name (metadata.name)")
	}
	key := env["LABOURLINK_LEDGER_KEY"]
	if key == "" {
		t.Error("no LABOURLINK_LEDGER_KEY: every node must sign with the same key")
	} else if s := mountedSecret(t, f, tmpl.Spec, c, key); s != nil && s != f.generated("coordination-ledger-key") {
		t.Errorf("the ledger key is in Secret %s, not coordination-ledger-key-HASH", s.Name)
	}

	// The certificate names every node, which the provinces dial by name.
	if tls != nil {
		block, _ := pem.Decode(tls.Data["tls.pem"])
		if block == nil {
			t.Fatal("tls.pem holds no PEM block")
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range nodeNames(ss) {
			if err := cert.VerifyHostname(name); err != nil {
				t.Errorf("the coordination certificate does not name %s (-hosts '*.{name}.labourlink.svc.cluster.local'): %v", name, err)
			}
		}
	}

	// Only the coordination pods reach the routes port.
	target := pod{name: ss.Name, labels: tmpl.Labels, kind: daemon.Coordination, ports: ports}
	nsLabels := map[string]string{"kubernetes.io/metadata.name": "labourlink"}
	for _, tc := range []struct {
		from peer
		want bool
	}{
		{peer{name: "another coordination node", nsLabels: nsLabels, podLabels: tmpl.Labels, sameNS: true}, true},
		{peer{name: "a sending service", nsLabels: nsLabels, podLabels: map[string]string{"app.kubernetes.io/name": "labourlink", "app.kubernetes.io/component": "sending"}, sameNS: true}, false},
		{peer{name: "a backup job", nsLabels: nsLabels, podLabels: map[string]string{"app.kubernetes.io/name": "labourlink", "app.kubernetes.io/component": "backup"}, sameNS: true}, false},
		{peer{name: "a client namespace", nsLabels: map[string]string{"kubernetes.io/metadata.name": "ops", "labourlink.eastwest/clients": "true"}}, false},
		{peer{name: "the monitoring namespace", nsLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"}}, false},
	} {
		if got := admits(t, f.policies, target, "routes", tc.from); got != tc.want {
			t.Errorf("%s -> routes: admitted %v, want %v", tc.from.name, got, tc.want)
		}
	}
}

// makeReplicatedCerts makes what kubernetes/replicated/kustomization.yaml says to make in its
// certs/: the federation's certificates with every coordination node's name, and a ledger key.
func makeReplicatedCerts(t *testing.T, dir string) {
	t.Helper()
	overlays, err := filepath.Glob(filepath.Join(dir, "..", "overlays", "*-*"))
	if err != nil {
		t.Fatal(err)
	}
	plan := identity.Plan{Hosts: []string{"{name}.labourlink.svc.cluster.local", "{name}.labourlink.svc", "*.{name}.labourlink.svc.cluster.local"}}
	for _, o := range overlays {
		kind, code, _ := strings.Cut(filepath.Base(o), "-")
		plan.Regions = append(plan.Regions, identity.RegionRole{Code: code, Role: identity.Role(kind)})
	}
	plan.Operators = identity.DefaultOperators(plan.Regions)
	certs := filepath.Join(dir, "certs")
	if _, err := identity.Init(certs, plan); err != nil {
		t.Fatal(err)
	}
	skey, _, err := note.GenerateKey(rand.Reader, "coordination")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(certs, "ledger.key"), []byte(skey), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestKubernetesReplicated(t *testing.T) {
	dir := filepath.Join(scratchCopy(t), "replicated")
	makeReplicatedCerts(t, dir)
	f, err := render(dir)
	if err != nil {
		t.Fatal(err)
	}
	if replicatedCoordination(t, f) == nil {
		t.Fatalf("no coordination StatefulSet of several replicas: %v", f.statefulSets["coordination"])
	}
	// The whole federation passes the checks of the single-node one (with checkReplicated for
	// the coordination service, and the provinces given every node).
	checkFederation(t, f, filepath.Join(dir, "certs"), map[daemon.Kind]int{daemon.Coordination: 1, daemon.Sending: 2, daemon.Receiving: 2})
	for name, ss := range f.statefulSets {
		if name == "coordination" {
			continue
		}
		env := f.settings(t, ss.Spec.Template.Spec.Containers[0], name+"-0")
		if !isCoordinationNodes(f, env["LABOURLINK_COORDINATION"]) {
			t.Errorf("%s: LABOURLINK_COORDINATION %q, want every coordination node", name, env["LABOURLINK_COORDINATION"])
		}
	}

	// The overlay builds on its own too (for a cluster that has the Secrets already).
	t.Run("coordination alone", func(t *testing.T) {
		g, err := render(filepath.Join(dir, "coordination"))
		if err != nil {
			t.Fatal(err)
		}
		if len(g.statefulSets) != 1 || len(g.cronJobs) != 1 || len(g.policies) != 1 || len(g.budgets) != 1 {
			t.Errorf("the overlay is one service: %d StatefulSets, %d CronJobs, %d NetworkPolicies, %d PodDisruptionBudgets", len(g.statefulSets), len(g.cronJobs), len(g.policies), len(g.budgets))
		}
		if svc := g.services["coordination"]; svc == nil || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(g.statefulSets["coordination"].Spec.Template.Labels)) {
			t.Error("no Service coordination selecting the pods")
		}
	})
}

// The single-node federation has no PodDisruptionBudget and gives the provinces the Service's
// name: the replicated checks apply only where the coordination is replicated.
func TestKubernetesSingleCoordination(t *testing.T) {
	f, _ := renderExample(t)
	if replicatedCoordination(t, f) != nil || len(f.budgets) != 0 {
		t.Errorf("the example federation's coordination is replicated: %v, %d budgets", f.statefulSets["coordination"].Spec.Replicas, len(f.budgets))
	}
}

// TestSystemdReplicatedCoordination: the coordination unit with the replicated drop-in and each
// of the three hosts' settings (example/replicated/) is a node the daemon accepts: replicated
// on NATS with three replicas, each host its own node name and advertised address, the same
// routes on all three naming every host's routes port, the ledger key a credential the drop-in
// loads, and the TLS files those the unit loads.
func TestSystemdReplicatedCoordination(t *testing.T) {
	u := readUnit(t, "systemd/labourlink-coordination.service")
	drop := readUnit(t, "systemd/labourlink-coordination.service.d/replicated.conf")
	const unitName = "labourlink-coordination.service"
	creds := map[string]bool{}
	for _, lc := range append(slices.Clone(u["Service"]["LoadCredential"]), drop["Service"]["LoadCredential"]...) {
		name, src, ok := strings.Cut(lc, ":")
		if !ok || !strings.HasPrefix(src, "/etc/labourlink/") {
			t.Errorf("LoadCredential=%s: want NAME:/etc/labourlink/FILE", lc)
		}
		creds["/run/credentials/"+unitName+"/"+name] = true
	}
	files, err := filepath.Glob("example/replicated/coordination-*.env")
	if err != nil || len(files) != 3 {
		t.Fatalf("example/replicated/: %v, %v; want the settings of three hosts", files, err)
	}
	names, advertised := map[string]bool{}, map[string]bool{}
	var routes string
	for i, file := range files {
		env := readEnv(t, file)
		for _, e := range u["Service"]["Environment"] {
			name, value, _ := strings.Cut(expand(e, ""), "=")
			env[name] = value
		}
		cfg := parseSettings(t, unitName+" with "+file, daemon.Coordination, env)
		if cfg.Replication != daemon.ReplicationNATS || cfg.NATSReplicas != 3 || len(cfg.NATSRoutes) != 3 {
			t.Errorf("%s: replication %q, %d replicas, routes %v", file, cfg.Replication, cfg.NATSReplicas, cfg.NATSRoutes)
		}
		if want := fmt.Sprintf("coordination-%d", i); cfg.ReplicaName != want {
			t.Errorf("%s: replica name %q, want %q", file, cfg.ReplicaName, want)
		}
		names[cfg.ReplicaName], advertised[cfg.Advertise] = true, true
		joined := strings.Join(cfg.NATSRoutes, ",")
		if routes == "" {
			routes = joined
		} else if joined != routes {
			t.Errorf("%s: routes %s, another host has %s", file, joined, routes)
		}
		_, port, _ := strings.Cut(cfg.NATSCluster, ":")
		if want := fmt.Sprintf("nats://coordination-%d.labourlink.internal:%s", i, port); !slices.Contains(cfg.NATSRoutes, want) {
			t.Errorf("%s: the routes %v do not name this host's routes port (%s)", file, cfg.NATSRoutes, want)
		}
		for _, p := range []string{cfg.LedgerKey, cfg.TLS.CAFile, cfg.TLS.CertFile, cfg.TLS.KeyFile} {
			if !creds[p] {
				t.Errorf("%s: %s is not a credential the unit and its drop-in load (%v)", file, p, creds)
			}
		}
	}
	if len(names) != 3 || len(advertised) != 3 {
		t.Errorf("the hosts' node names %v or advertised addresses %v are not three distinct", names, advertised)
	}
}
