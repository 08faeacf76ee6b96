package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	"github.com/eastwest/labourlink/services/daemon"
	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/i18n"
	"github.com/eastwest/labourlink/services/platform/peers"
)

// dialer holds the connection flags every client command shares.
type dialer struct {
	addr    string
	caFile  string
	cert    string
	keyFile string
	// timeout bounds each request-response call (-timeout); streams (imports, follow, backup)
	// run until they end.
	timeout time.Duration
}

// usesTLS reports whether calls go over mTLS (a TLS flag or variable is set).
func (d *dialer) usesTLS() bool { return d.caFile != "" || d.cert != "" || d.keyFile != "" }

// grpcurlFlags is what grpcurl needs to call the service as this CLI does: -plaintext, or the
// same CA, certificate and key.
func (d *dialer) grpcurlFlags() string {
	if !d.usesTLS() {
		return "-plaintext"
	}
	return fmt.Sprintf("-cacert %s -cert %s -key %s", d.caFile, d.cert, d.keyFile)
}

// cliFlags is what another labourlink command needs to call the service as this one does: the
// TLS flags, or nothing.
func (d *dialer) cliFlags() string {
	if !d.usesTLS() {
		return ""
	}
	return fmt.Sprintf(" -tls-ca %s -tls-cert %s -tls-key %s", d.caFile, d.cert, d.keyFile)
}

// addDialFlags adds -addr (defaulting to the local federation's port for kind), -timeout and the
// TLS flags.
func addDialFlags(fs *flag.FlagSet, kind daemon.Kind) *dialer {
	d := &dialer{}
	usage := "address of the " + string(kind) + " service (env LABOURLINK_" + strings.ToUpper(string(kind)) + "_ADDR)"
	if kind == daemon.Coordination {
		usage = "address of the coordination service, or of each node of a replicated coordination, `host:port,...` (env LABOURLINK_COORDINATION_ADDR)"
	}
	fs.StringVar(&d.addr, "addr", defaultAddr(kind), usage)
	fs.StringVar(&d.caFile, "tls-ca", os.Getenv("LABOURLINK_TLS_CA"), "federation CA certificate for mTLS (env LABOURLINK_TLS_CA)")
	fs.StringVar(&d.cert, "tls-cert", os.Getenv("LABOURLINK_TLS_CERT"), "client certificate (env LABOURLINK_TLS_CERT)")
	fs.StringVar(&d.keyFile, "tls-key", os.Getenv("LABOURLINK_TLS_KEY"), "client private key (env LABOURLINK_TLS_KEY)")
	fs.DurationVar(&d.timeout, "timeout", peers.DefaultCallTimeout, "how long each call may take, connecting included (such as 10s or 2m)")
	return d
}

// defaultAddr is the address of the service of kind k unless a flag says otherwise:
// LABOURLINK_<KIND>_ADDR, else the local federation's port.
func defaultAddr(k daemon.Kind) string {
	if v := os.Getenv("LABOURLINK_" + strings.ToUpper(string(k)) + "_ADDR"); v != "" {
		return v
	}
	return daemon.DefaultAddr(k)
}

// defaultTo points d at the default address of a service of kind k (and its environment
// variable) unless -addr was given: for commands that learn the kind from a flag.
func (d *dialer) defaultTo(fs *flag.FlagSet, k daemon.Kind) {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "addr" })
	if !given {
		d.addr = defaultAddr(k)
	}
}

// conn is a connection to the service at d.addr: each request-response call gets d.timeout, and
// the errors of every call and stream carry the address and the TLS settings (callError), so
// that describeError can say what is wrong in a sentence.
type conn struct {
	*grpc.ClientConn
	d *dialer
}

// Invoke runs a request-response call within d.timeout.
func (c *conn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	ctx, cancel := context.WithTimeout(withLanguage(ctx), c.d.timeout)
	defer cancel()
	return c.d.wrap(c.ClientConn.Invoke(ctx, method, args, reply, opts...))
}

// NewStream opens a stream; it is not bounded by d.timeout (keepalive finds a dead peer).
func (c *conn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := c.ClientConn.NewStream(withLanguage(ctx), desc, method, opts...)
	if err != nil {
		return nil, c.d.wrap(err)
	}
	return &clientStream{ClientStream: s, d: c.d}, nil
}

// withLanguage asks the service, in the accept-language metadata header of the call, for its
// errors in the CLI's language (cliLang): every call and stream of the CLI goes through conn, so
// every error a service returns carries a google.rpc.LocalizedMessage in that language (and each
// field violation its localized_message), which describeError prints.
func withLanguage(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "accept-language", acceptLanguage())
}

// acceptLanguage is the accept-language value of cliLang: "zh-CN, zh;q=0.9" for Chinese,
// "en" otherwise.
func acceptLanguage() string {
	if cliLang == i18n.Chinese {
		return "zh-CN, zh;q=0.9"
	}
	return "en"
}

// clientStream wraps the errors of a stream as conn does.
type clientStream struct {
	grpc.ClientStream
	d *dialer
}

func (s *clientStream) SendMsg(m any) error { return s.d.wrap(s.ClientStream.SendMsg(m)) }
func (s *clientStream) RecvMsg(m any) error { return s.d.wrap(s.ClientStream.RecvMsg(m)) }

// callError is a gRPC status error of a call to the service at addr; it is the status for
// status.FromError and status.Code, and describeError reads addr and the TLS settings.
type callError struct {
	st      *status.Status
	addr    string
	tls     bool
	caFile  string
	cert    string
	timeout time.Duration
}

func (e *callError) Error() string              { return e.st.Err().Error() }
func (e *callError) GRPCStatus() *status.Status { return e.st }

// wrap returns err as a callError when it is a gRPC status (io.EOF and other errors as they are).
func (d *dialer) wrap(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*callError); ok {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	return &callError{st: st, addr: d.addr, tls: d.usesTLS(), caFile: d.caFile, cert: d.cert, timeout: d.timeout}
}

// dial connects to the service (without blocking: the first call connects).
func (d *dialer) dial() (*conn, error) {
	var o peers.Options
	if d.caFile != "" || d.cert != "" || d.keyFile != "" {
		creds, err := clientTLS(d.caFile, d.cert, d.keyFile)
		if err != nil {
			return nil, err
		}
		o.Creds = creds
	}
	if d.timeout <= 0 {
		return nil, errors.New("-timeout must be more than 0")
	}
	cc, err := peers.Dial(d.addr, o)
	if err != nil {
		return nil, err
	}
	return &conn{ClientConn: cc, d: d}, nil
}

func clientTLS(caFile, certFile, keyFile string) (credentials.TransportCredentials, error) {
	if caFile == "" || certFile == "" || keyFile == "" {
		return nil, errors.New("mTLS needs -tls-ca, -tls-cert and -tls-key")
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS13}), nil
}

// reasonHint says in plain words, in cliLang, what to do about an error with this ErrorInfo
// reason; "" for a reason a person cannot act on.
func reasonHint(r commonv1.ErrorReason) string {
	switch r {
	case commonv1.ErrorReason_ERROR_REASON_STORAGE_FULL:
		return tr("the service's disk is full, so nothing was written; ask its operator to free disk space (the service's data folder), then run the same command again: repeating it is safe")
	case commonv1.ErrorReason_ERROR_REASON_TOO_MANY_STREAMS:
		return tr("the service is at its limit of open imports and watches; try again in a minute")
	case commonv1.ErrorReason_ERROR_REASON_TOO_MANY_CALLS:
		return tr("the service is at its limit of calls in progress; try again in a moment")
	case commonv1.ErrorReason_ERROR_REASON_CALLER_NOT_ALLOWED:
		return tr("the identity in your certificate (-tls-cert) may not make this call here: use the certificate of a party it is allowed for (docs/production.md, \"Who may call what\")")
	case commonv1.ErrorReason_ERROR_REASON_NO_IDENTITY:
		return tr("the service needs to know who calls: give -tls-ca, -tls-cert and -tls-key (or LABOURLINK_TLS_CA, LABOURLINK_TLS_CERT, LABOURLINK_TLS_KEY)")
	}
	return ""
}

// tlsFlagsHint names the TLS flags and their environment variables.
const tlsFlagsHint = "-tls-ca, -tls-cert and -tls-key (or LABOURLINK_TLS_CA, LABOURLINK_TLS_CERT, LABOURLINK_TLS_KEY)"

// connectionProblem explains, in one sentence naming the address and the likely fix, a call
// that did not reach the service: nothing listening, something else listening, plaintext
// against TLS and the reverse, a certificate of another CA or for another host, a client
// certificate the service refuses, no answer within -timeout. "" for any other error (the
// service answered).
func connectionProblem(e *callError) string {
	msg := e.st.Message()
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(msg, s) {
				return true
			}
		}
		return false
	}
	switch e.st.Code() {
	case codes.DeadlineExceeded:
		if has("waiting for connections to become ready") {
			return tr("no answer from %s within %s: something accepts connections there but does not answer as a labourlink service (wrong -addr?), or the link is slower than that (raise -timeout)", e.addr, e.timeout)
		}
		return tr("%s did not finish the call within %s: raise -timeout (repeating the command is safe)", e.addr, e.timeout)
	case codes.Unavailable:
	default:
		return ""
	}
	switch {
	case has("connection refused"):
		return tr("nothing listens at %s: start the service there (labourlink dev, or labourlink serve KIND), or point -addr at where it runs", e.addr)
	case has("no such host", "name resolver", "produced zero addresses"):
		return tr("the host of %s is not known: check -addr", e.addr)
	case has("first record does not look like a TLS handshake"):
		return tr("%s is a plaintext service but you called it with TLS: leave out %s, or start the service with TLS", e.addr, tlsFlagsHint)
	case has("certificate signed by unknown authority"):
		return tr("the certificate of %s is not signed by the CA in -tls-ca (%s): give the CA of the federation that service belongs to", e.addr, e.caFile)
	case has("certificate is valid for"):
		valid := msg[strings.Index(msg, "certificate is valid for ")+len("certificate is valid for "):]
		if i := strings.IndexAny(valid, "\"\\"); i >= 0 {
			valid = valid[:i]
		}
		return tr("the certificate of %s is for another host (%s): dial a name or address it names, or issue the service a certificate for this one (labourlink certs issue -hosts)", e.addr, valid)
	case has("unknown certificate authority", "bad certificate", "certificate required", "expired certificate", "unsupported certificate"):
		return tr("%s refused your client certificate (-tls-cert %s): use one issued by the federation's CA (labourlink certs issue)", e.addr, e.cert)
	case has("HTTP/1.1 header", "frame too large"):
		return tr("%s answers, but not as a gRPC service: -addr probably names another program or port", e.addr)
	case has("EOF", "connection reset by peer", "broken pipe", "server preface received"):
		if e.tls {
			return tr("%s closed the connection after the TLS handshake: it probably refused your client certificate (-tls-cert %s); use one issued by the federation's CA (labourlink certs issue)", e.addr, e.cert)
		}
		return tr("%s closed the connection: it probably expects TLS (give %s), or it is not a labourlink service (check -addr)", e.addr, tlsFlagsHint)
	}
	return ""
}

// describeError renders an error for a person, in cliLang: a gRPC status with its code, message
// and field violations, one per line, and a hint for reasons a person can act on. The message
// and the violations are the service's google.rpc.LocalizedMessage when it sent one in cliLang
// (withLanguage asks for it), else the English ones rendered by the catalog.
// A call that could not reach the service is explained in one sentence naming the address and
// the likely fix (connectionProblem) instead.
func describeError(err error) string {
	var ce *callError
	if errors.As(err, &ce) {
		if s := connectionProblem(ce); s != "" {
			return s
		}
	}
	st, ok := status.FromError(err)
	if !ok {
		return localized(err.Error())
	}
	inLang := func(m *errdetails.LocalizedMessage) bool {
		if m == nil || m.GetMessage() == "" {
			return false
		}
		tag, err := i18n.Parse(m.GetLocale())
		return err == nil && tag == cliLang
	}
	msg := localized(st.Message())
	var b strings.Builder
	var hint, reason string
	var violations []string
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.LocalizedMessage:
			if inLang(d) {
				msg = d.GetMessage()
			}
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				desc := localized(v.GetDescription())
				if inLang(v.GetLocalizedMessage()) {
					desc = v.GetLocalizedMessage().GetMessage()
				}
				violations = append(violations, fmt.Sprintf("\n  %s: %s", v.GetField(), desc))
			}
		case *errdetails.ErrorInfo:
			if d.GetReason() != "" {
				reason = fmt.Sprintf(" [%s]", d.GetReason())
			}
			hint = reasonHint(apierror.ParseReason(d.GetReason()))
		}
	}
	fmt.Fprintf(&b, "%s: %s%s", st.Code(), msg, reason)
	for _, v := range violations {
		b.WriteString(v)
	}
	if hint != "" {
		fmt.Fprintf(&b, "\n  %s", hint)
	}
	return b.String()
}
