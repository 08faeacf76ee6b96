package daemon_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	sendingv1 "github.com/eastwest/labourlink/proto/labourlink/sending/v1"
	"github.com/eastwest/labourlink/services/devtools/proctest"
	"github.com/eastwest/labourlink/services/devtools/wait"
	"github.com/eastwest/labourlink/services/platform/grpcserver"
	"github.com/eastwest/labourlink/services/platform/identity"
)

// post sends body as JSON (a Connect unary call) to method on base and returns the status and
// the body of the answer.
func post(t *testing.T, c *http.Client, base, method, body string) (int, string) {
	t.Helper()
	resp, err := c.Post(base+"/"+method, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// envelope is msg in a Connect streaming envelope: a flags byte, the length (4 bytes, big
// endian), the message.
func envelope(flags byte, msg []byte) []byte {
	out := []byte{flags, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(out[1:], uint32(len(msg)))
	return append(out, msg...)
}

// connectError is the JSON of a Connect error.
type connectError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details []struct {
		Type  string         `json:"type"`
		Debug map[string]any `json:"debug"`
	} `json:"details"`
}

// Over the HTTP listener, in plaintext: a unary call answers JSON, an invalid request gets
// INVALID_ARGUMENT with its BadRequest field violation in the details, a client-streaming
// import in Connect envelopes imports, and the calls are counted in the gRPC metrics.
func TestHTTPJSONReachesTheService(t *testing.T) {
	t.Parallel()
	cfg := sendingConfig(t)
	cfg.HTTPAddr = proctest.FreeAddr(t)
	cfg.MetricsAddr = proctest.FreeAddr(t)
	run(t, cfg, zaptest.NewLogger(t))
	healthy(t, cfg.Listen, insecure.NewCredentials())
	base := "http://" + cfg.HTTPAddr
	c := &http.Client{}

	code, body := post(t, c, base, "labourlink.sending.v1.RosterService/ListWorkers", `{"page_size":5}`)
	if code != http.StatusOK || !strings.Contains(body, `"workers"`) {
		t.Fatalf("ListWorkers: %d %s", code, body)
	}

	code, body = post(t, c, base, "labourlink.sending.v1.RosterService/ListWorkers", `{"page_size":-5}`)
	var ce connectError
	if err := json.Unmarshal([]byte(body), &ce); err != nil || code != http.StatusBadRequest || ce.Code != "invalid_argument" {
		t.Fatalf("negative page_size: %d %s (%v)", code, body, err)
	}
	var field string
	for _, d := range ce.Details {
		if d.Type == "google.rpc.BadRequest" {
			if fv, ok := d.Debug["fieldViolations"].([]any); ok && len(fv) > 0 {
				field, _ = fv[0].(map[string]any)["field"].(string)
			}
		}
	}
	if field != "page_size" {
		t.Errorf("no BadRequest violation on page_size in %s", body)
	}

	// The import: one message with every row and final, in a Connect streaming envelope.
	rows := rosterRows(0, 3)
	msg, err := protojson.Marshal(&sendingv1.ImportWorkersRequest{ImportId: "http-1", Rows: rows, Final: true, TotalRows: int64(len(rows))})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Post(base+"/labourlink.sending.v1.RosterService/ImportWorkers", "application/connect+json", bytes.NewReader(envelope(0, msg)))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(out) < 5 || out[0] != 0 {
		t.Fatalf("ImportWorkers: %d %q", resp.StatusCode, out)
	}
	n := binary.BigEndian.Uint32(out[1:5])
	var ir sendingv1.ImportWorkersResponse
	if err := protojson.Unmarshal(out[5:5+n], &ir); err != nil {
		t.Fatalf("ImportWorkers answer %q: %v", out, err)
	}
	if end := out[5+n:]; len(end) < 5 || end[0] != 2 || strings.Contains(string(end), "error") {
		t.Fatalf("ImportWorkers end of stream %q", end)
	}
	code, body = post(t, c, base, "labourlink.sending.v1.RosterService/ListWorkers", `{}`)
	if code != http.StatusOK || strings.Count(body, `"workerId"`) != len(rows) {
		t.Errorf("after the import over HTTP, ListWorkers: %d %s", code, body)
	}

	mresp, err := c.Get("http://" + cfg.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, want := range []string{
		`grpc_server_handled_total{grpc_code="OK",grpc_method="ListWorkers",grpc_service="labourlink.sending.v1.RosterService",grpc_type="unary"} 2`,
		`grpc_server_handled_total{grpc_code="InvalidArgument",grpc_method="ListWorkers",grpc_service="labourlink.sending.v1.RosterService",grpc_type="unary"} 1`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// With mTLS the HTTP listener refuses a caller without a client certificate, answers
// PERMISSION_DENIED to a party the method is not for (as over gRPC), and serves the province's
// own system.
func TestHTTPJSONWithMTLS(t *testing.T) {
	t.Parallel()
	dir := certs(t)
	cfg := sendingConfig(t)
	cfg.TLS = tlsOf(dir, identity.Sending("520000"))
	cfg.HTTPAddr = proctest.FreeAddr(t)
	cfg.Coordination = ""
	run(t, cfg, zaptest.NewLogger(t))
	base := "https://" + cfg.HTTPAddr
	client := func(id *identity.Identity) *http.Client {
		ca := tlsOf(dir, identity.Coordination()).CAFile
		var tc *tls.Config
		if id == nil {
			self := tlsOf(dir, identity.System("520000"))
			full, err := identity.ClientTLS(ca, self.CertFile, self.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			tc = &tls.Config{RootCAs: full.RootCAs, MinVersion: tls.VersionTLS13}
		} else {
			f := tlsOf(dir, *id)
			var err error
			if tc, err = identity.ClientTLS(ca, f.CertFile, f.KeyFile); err != nil {
				t.Fatal(err)
			}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	}
	const method = "labourlink.sending.v1.RosterService/ListWorkers"
	// The service is ready once its own system is served.
	var code int
	var body string
	wait.For(t, "the HTTP listener", func() bool {
		resp, err := client(ptr(identity.System("520000"))).Post(base+"/"+method, "application/json", strings.NewReader(`{}`))
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		code, body = resp.StatusCode, string(b)
		return true
	})
	if code != http.StatusOK {
		t.Fatalf("Guizhou's system: %d %s", code, body)
	}
	if resp, err := client(nil).Post(base+"/"+method, "application/json", strings.NewReader(`{}`)); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Errorf("without a client certificate: %d %s", resp.StatusCode, b)
	}
	code, body = post(t, client(ptr(identity.Receiving("440000"))), base, method, `{}`)
	var ce connectError
	if err := json.Unmarshal([]byte(body), &ce); err != nil || code != http.StatusForbidden || ce.Code != "permission_denied" {
		t.Errorf("Guangdong's receiving service: %d %s", code, body)
	}
}

func ptr[T any](v T) *T { return &v }

// rawExchange writes req on a new connection to addr and returns what the server answers
// before it closes the connection or after the first response's headers ("" and the error when
// the connection is closed without an answer).
func rawExchange(t *testing.T, addr, req string) (string, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute)) // a guard against a hang, not an assertion
	if _, err := io.WriteString(c, req); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return fmt.Sprintf("%d %s", resp.StatusCode, b), nil
}

// The HTTP listener's bounds: a unary body larger than the gRPC port's message limit is refused
// from its Content-Length (413, Connect resource_exhausted) before it is read, headers over
// 64 KiB get 431, and the connections open at once are bounded by -max-connections: one more is
// closed without an answer, and a slot freed admits the next.
func TestHTTPListenerLimits(t *testing.T) {
	t.Parallel()
	cfg := sendingConfig(t)
	cfg.HTTPAddr = proctest.FreeAddr(t)
	cfg.MaxConnections = 2
	run(t, cfg, zaptest.NewLogger(t))
	healthy(t, cfg.Listen, insecure.NewCredentials())
	const path = "/labourlink.sending.v1.RosterService/ListWorkers"

	got, err := rawExchange(t, cfg.HTTPAddr, fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{",
		path, grpcserver.DefaultMaxRecvBytes+1))
	if err != nil || !strings.HasPrefix(got, "413 ") || !strings.Contains(got, `"code":"resource_exhausted"`) {
		t.Errorf("a body over the message limit: %q %v, want 413 resource_exhausted", got, err)
	}
	got, err = rawExchange(t, cfg.HTTPAddr, fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Big: %s\r\nContent-Length: 2\r\n\r\n{}",
		path, strings.Repeat("a", 80<<10)))
	if err != nil || !strings.HasPrefix(got, "431 ") {
		t.Errorf("80 KiB of headers: %q %v, want 431", got, err)
	}
	ok := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", path)
	if got, err := rawExchange(t, cfg.HTTPAddr, ok); err != nil || !strings.HasPrefix(got, "200 ") {
		t.Fatalf("a small call: %q %v", got, err)
	}

	// Two keep-alive connections, each answered once, hold the two slots (the connections closed
	// above free theirs once the server has seen them closed).
	var held []net.Conn
	hold := func() bool {
		c, err := net.Dial("tcp", cfg.HTTPAddr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, ok); err == nil {
			if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil && resp.StatusCode == http.StatusOK {
				resp.Body.Close()
				held = append(held, c)
				return true
			}
		}
		c.Close()
		return false
	}
	wait.For(t, "two connections answered and held", func() bool {
		if len(held) < 2 {
			hold()
		}
		return len(held) == 2
	})
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	if got, err := rawExchange(t, cfg.HTTPAddr, ok); err == nil {
		t.Errorf("a third connection with -max-connections 2: answered %q, want it closed", got)
	}
	held[0].Close()
	wait.For(t, "a connection admitted once a slot is freed", func() bool {
		got, err := rawExchange(t, cfg.HTTPAddr, ok)
		return err == nil && strings.HasPrefix(got, "200 ")
	})
}
