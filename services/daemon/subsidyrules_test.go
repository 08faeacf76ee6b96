package daemon_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	coordinationv1 "github.com/eastwest/labourlink/proto/labourlink/coordination/v1"
	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/devtools/proctest"
)

// TestSubsidyRulesFile: -subsidy-rules (or LABOURLINK_SUBSIDY_RULES) replaces the embedded rules;
// a bad file stops the service at start with the rule and the field that are wrong.
func TestSubsidyRulesFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", `{"rules":[{"id":"transport-2027","title":"t","fact":"DEPARTED","registered_poor":true,"out_of_province":true,"once_per":"year"}]}`)
	for _, tc := range []struct {
		name, file string
		env        bool
		want       string
	}{
		{"missing file", filepath.Join(dir, "nope.json"), false, "-subsidy-rules: subsidy rules: open"},
		{"bad field", write("bad.json", `{"rules":[{"id":"a","fact":"DEPARTED","once_per":"year"},{"id":"stay","fact":"EMPLOYMENT_CHECKPOINT","min_months_employed":0,"once_per":"year"}]}`),
			false, `rules[1] ("stay"): field min_months_employed: must be 1 to 120`},
		{"unknown field from the environment", write("unknown.json", `{"rules":[{"id":"a","fact":"DEPARTED","once_per":"year","month":3}]}`),
			true, `LABOURLINK_SUBSIDY_RULES`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"-listen", "127.0.0.1:0", "-data", t.TempDir()}
			if tc.env {
				t.Setenv("LABOURLINK_SUBSIDY_RULES", tc.file)
			} else {
				args = append(args, "-subsidy-rules", tc.file)
			}
			err := daemon.Main(context.Background(), daemon.Coordination, "coordination", args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), "-subsidy-rules") || (!tc.env && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("start with %s: %v, want an error with %q", tc.file, err, tc.want)
			}
			if tc.env && !strings.Contains(err.Error(), `rules[0] ("a"): json: unknown field "month"`) {
				t.Fatalf("start with %s from the environment: %v", tc.file, err)
			}
		})
	}
	t.Run("good file", func(t *testing.T) {
		cfg := daemon.Config{Kind: daemon.Coordination, Listen: proctest.FreeAddr(t), DataDir: t.TempDir(), LogLevel: "info",
			ShutdownTimeout: 2 * time.Second, SubsidyRules: good}
		run(t, cfg, zaptest.NewLogger(t))
		healthy(t, cfg.Listen, insecure.NewCredentials())
		cc, err := grpc.NewClient(cfg.Listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		resp, err := coordinationv1.NewEligibilityServiceClient(cc).ListSubsidyRules(t.Context(), &coordinationv1.ListSubsidyRulesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetRules()) != 1 || resp.GetRules()[0].GetId() != "transport-2027" {
			t.Fatalf("rules served: %v, want the file's one rule transport-2027", resp.GetRules())
		}
	})
}
