package daemon

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/peers"
	"github.com/eastwest/labourlink/services/platform/version"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		kind    Kind
		args    []string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "sending defaults", kind: Sending, args: []string{"-region", "520000"}, check: func(t *testing.T, c Config) {
			if c.Listen != DefaultSendingAddr || c.Coordination != DefaultCoordinationAddr || c.DataDir != "data/sending-520000" || c.Advertise != c.Listen {
				t.Errorf("defaults: %+v", c)
			}
			if c.SeatsBus != 45 || c.SeatsTrain != 118 || c.SeatsFlight != 180 || c.RequestIDRetention != 30*24*time.Hour {
				t.Errorf("defaults: %+v", c)
			}
			if c.DataFile() != "data/sending-520000/sending.db" {
				t.Errorf("data file %s", c.DataFile())
			}
		}},
		{name: "environment fills flags not given", kind: Receiving, args: []string{"-listen", "127.0.0.1:9"},
			env: map[string]string{"LABOURLINK_REGION": "440000", "LABOURLINK_LISTEN": "127.0.0.1:7", "LABOURLINK_FEED_RETENTION": "5000"},
			check: func(t *testing.T, c Config) {
				if c.Region != "440000" || c.Listen != "127.0.0.1:9" || c.FeedRetention != 5000 {
					t.Errorf("flag must win over env, env must fill the rest: %+v", c)
				}
			}},
		{name: "static receiving endpoints", kind: Sending, args: []string{"-region", "520000", "-receiving", "440000=127.0.0.1:1, 330000=127.0.0.1:2"},
			check: func(t *testing.T, c Config) {
				if len(c.Receiving) != 2 || c.Receiving["330000"] != "127.0.0.1:2" {
					t.Errorf("receiving: %v", c.Receiving)
				}
			}},
		{name: "coordination", kind: Coordination, args: []string{"-grace-period", "1h"}, check: func(t *testing.T, c Config) {
			if c.GracePeriod != time.Hour || !c.LoadDefaultPairings || c.DataDir != "./data/coordination" {
				t.Errorf("coordination: %+v", c)
			}
		}},
		{name: "call deadlines", kind: Receiving, args: []string{"-region", "440000", "-call-deadline-per-item", "20ms"},
			env: map[string]string{"LABOURLINK_CALL_DEADLINE": "90s"},
			check: func(t *testing.T, c Config) {
				if got := c.Deadlines().For(100); got != 92*time.Second {
					t.Errorf("deadline of a call of 100 items = %v, want 92s", got)
				}
			}},
		{name: "default call deadlines", kind: Sending, args: []string{"-region", "520000"}, check: func(t *testing.T, c Config) {
			if got, want := c.Deadlines().For(1000), peers.CallTimeout(1000); got != want {
				t.Errorf("default deadline of 1000 items = %v, want %v", got, want)
			}
		}},
		{name: "call deadline not negative", kind: Sending, args: []string{"-region", "520000", "-call-deadline", "-1s"}, wantErr: "-call-deadline"},
		{name: "server limits default to grpcserver's", kind: Coordination, check: func(t *testing.T, c Config) {
			gc := c.withLimits(grpcserver.Config{ServiceName: "x"})
			if gc.ServiceName != "x" || gc.MaxStreams != grpcserver.DefaultMaxStreams || gc.MaxUnaryCalls != grpcserver.DefaultMaxUnaryCalls ||
				gc.MaxConnections != grpcserver.DefaultMaxConnections || gc.StreamFirstMessageTimeout != grpcserver.DefaultStreamFirstMessageTimeout ||
				gc.StreamIdleTimeout != grpcserver.DefaultStreamIdleTimeout {
				t.Errorf("server config %+v", gc)
			}
		}},
		{name: "server limits from flags and environment", kind: Sending, args: []string{"-region", "520000", "-max-streams", "64", "-stream-first-message-timeout", "5s"},
			env: map[string]string{"LABOURLINK_MAX_CONNECTIONS": "100", "LABOURLINK_STREAM_IDLE_TIMEOUT": "1m", "LABOURLINK_MAX_UNARY_CALLS": "300"},
			check: func(t *testing.T, c Config) {
				if c.MaxStreams != 64 || c.MaxConnections != 100 || c.MaxUnaryCalls != 300 || c.StreamFirstMessageTimeout != 5*time.Second || c.StreamIdleTimeout != time.Minute {
					t.Errorf("limits: %+v", c)
				}
			}},
		{name: "max streams bounded", kind: Coordination, args: []string{"-max-streams", "0"}, wantErr: "-max-streams must be at least 1"},
		{name: "max connections bounded", kind: Coordination, env: map[string]string{"LABOURLINK_MAX_CONNECTIONS": "-1"}, wantErr: "-max-connections must be at least 1"},
		{name: "idle timeout bounded", kind: Receiving, args: []string{"-region", "440000", "-stream-idle-timeout", "0s"}, wantErr: "-stream-idle-timeout must be above 0"},
		{name: "region required", kind: Sending, wantErr: "-region is required"},
		{name: "region must be a province", kind: Receiving, args: []string{"-region", "440100"}, wantErr: "is not a province"},
		{name: "region must exist", kind: Receiving, args: []string{"-region", "990000"}, wantErr: "-region"},
		{name: "bad env value", kind: Sending, args: []string{"-region", "520000"}, env: map[string]string{"LABOURLINK_SEATS_BUS": "many"}, wantErr: "LABOURLINK_SEATS_BUS"},
		{name: "seats bounded", kind: Sending, args: []string{"-region", "520000", "-seats-bus", "0"}, wantErr: "-seats-bus must be between 1 and 1000"},
		{name: "feed retention bounded", kind: Receiving, args: []string{"-region", "440000", "-feed-retention", "10"}, wantErr: "-feed-retention"},
		{name: "tls needs all three files", kind: Coordination, args: []string{"-tls-cert", "x.pem"}, wantErr: "TLS needs all of"},
		{name: "bad receiving list", kind: Sending, args: []string{"-region", "520000", "-receiving", "440000"}, wantErr: "not code=host:port"},
		{name: "log level", kind: Coordination, args: []string{"-log-level", "loud"}, wantErr: "-log-level"},
		{name: "stray arguments", kind: Coordination, args: []string{"extra"}, wantErr: "unexpected arguments"},
		{name: "replication off by default", kind: Coordination, check: func(t *testing.T, c Config) {
			if c.Replication != ReplicationNone || c.RequestIDRetention != 30*24*time.Hour {
				t.Errorf("replication %q, retention %v", c.Replication, c.RequestIDRetention)
			}
		}},
		{name: "replicated node", kind: Coordination, args: []string{"-replication", "nats", "-replica-name", "coordination-1", "-ledger-key", "k",
			"-nats-listen", "127.0.0.1:4300", "-nats-cluster", "127.0.0.1:6300", "-nats-routes", "nats://127.0.0.1:6300, nats://127.0.0.1:6301,nats://127.0.0.1:6302"},
			check: func(t *testing.T, c Config) {
				if c.Replication != ReplicationNATS || c.ReplicaName != "coordination-1" || c.NATSReplicas != 3 || len(c.NATSRoutes) != 3 ||
					c.NATSRoutes[1] != "nats://127.0.0.1:6301" || c.NATSCluster != "127.0.0.1:6300" || c.NATSListen != "127.0.0.1:4300" {
					t.Errorf("replicated node: %+v", c)
				}
				// Each node pruning request ids by its own clock would make the files differ.
				if c.RequestIDRetention != 0 {
					t.Errorf("request-id retention %v in the replicated mode, want 0 (kept)", c.RequestIDRetention)
				}
			}},
		{name: "replicated single node", kind: Coordination, args: []string{"-replication", "nats", "-replica-name", "c0", "-ledger-key", "k", "-nats-replicas", "1"},
			check: func(t *testing.T, c Config) {
				if c.NATSReplicas != 1 || c.NATSCluster != "" {
					t.Errorf("single node: %+v", c)
				}
			}},
		{name: "replication mode unknown", kind: Coordination, args: []string{"-replication", "raft"}, wantErr: "-replication must be none or nats"},
		{name: "replication needs a name", kind: Coordination, args: []string{"-replication", "nats", "-ledger-key", "k", "-nats-replicas", "1"}, wantErr: "-replica-name"},
		{name: "replication needs the shared ledger key", kind: Coordination, args: []string{"-replication", "nats", "-replica-name", "c0", "-nats-replicas", "1"}, wantErr: "-ledger-key"},
		{name: "replicas odd", kind: Coordination, args: []string{"-replication", "nats", "-replica-name", "c0", "-ledger-key", "k", "-nats-replicas", "2"}, wantErr: "-nats-replicas must be 1, 3 or 5"},
		{name: "three replicas need the routes", kind: Coordination, args: []string{"-replication", "nats", "-replica-name", "c0", "-ledger-key", "k",
			"-nats-cluster", "127.0.0.1:6300", "-nats-routes", "nats://127.0.0.1:6300"}, wantErr: "naming at least 3 nodes"},
		{name: "routes are nats URLs", kind: Coordination, args: []string{"-replication", "nats", "-replica-name", "c0", "-ledger-key", "k",
			"-nats-cluster", "127.0.0.1:6300", "-nats-routes", "nats://a:1,b:2,nats://c:3"}, wantErr: `"b:2" is not nats://host:port`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := ParseFlags(tt.kind, "test", tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

// TestHelpExplainsEveryFlag: -h lists every flag with its environment variable form.
func TestHelpExplainsEveryFlag(t *testing.T) {
	for _, k := range Kinds {
		var out strings.Builder
		_, err := ParseFlags(k, string(k), []string{"-h"}, &out)
		if !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%s -h: %v", k, err)
		}
		for _, want := range []string{"-listen", "-data", "-log-level", "LABOURLINK_LISTEN"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s -h does not mention %s:\n%s", k, want, out.String())
			}
		}
	}
}

// TestArgsRoundTrip: the flags the federation renders for a child process parse back to the
// same configuration.
func TestArgsRoundTrip(t *testing.T) {
	c, err := ParseFlags(Sending, "t", []string{"-region", "520000", "-receiving", "440000=127.0.0.1:1", "-listen", "127.0.0.1:5", "-call-deadline", "2m", "-ready-file", "d/sending.ready"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseFlags(Sending, "t", c.Args(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if back.Region != c.Region || back.Listen != c.Listen || back.DataDir != c.DataDir || back.Receiving["440000"] != "127.0.0.1:1" ||
		back.Deadlines() != c.Deadlines() || back.ReadyFile != "d/sending.ready" {
		t.Errorf("round trip: %+v, want %+v", back, c)
	}
}

// TestReplicationArgsRoundTrip: a replicated node's flags, rendered for its child process by the
// local federation, parse back to the same node.
func TestReplicationArgsRoundTrip(t *testing.T) {
	c, err := ParseFlags(Coordination, "t", []string{"-replication", "nats", "-replica-name", "coordination-2", "-ledger-key", "dev/ledger.key",
		"-nats-listen", "127.0.0.1:4302", "-nats-cluster", "127.0.0.1:6302", "-nats-routes", "nats://127.0.0.1:6300,nats://127.0.0.1:6301,nats://127.0.0.1:6302"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseFlags(Coordination, "t", c.Args(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if back.Replication != c.Replication || back.ReplicaName != c.ReplicaName || back.LedgerKey != c.LedgerKey || back.NATSListen != c.NATSListen ||
		back.NATSCluster != c.NATSCluster || strings.Join(back.NATSRoutes, ",") != strings.Join(c.NATSRoutes, ",") || back.NATSReplicas != c.NATSReplicas {
		t.Errorf("round trip: %+v, want %+v", back, c)
	}
}

// -version prints the build and asks for nothing to run, as -h does.
func TestVersionFlag(t *testing.T) {
	for _, k := range []Kind{Sending, Receiving, Coordination} {
		var out strings.Builder
		_, err := ParseFlags(k, string(k), []string{"-version"}, &out)
		if !errors.Is(err, flag.ErrHelp) || strings.TrimSpace(out.String()) != version.Line(string(k)) {
			t.Errorf("%s -version: %v, %q; want flag.ErrHelp and %q", k, err, out.String(), version.Line(string(k)))
		}
	}
}
