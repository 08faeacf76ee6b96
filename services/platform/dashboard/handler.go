package dashboard

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"

	"go.uber.org/zap"
	"golang.org/x/text/language"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/eastwest/labourlink/services/platform/apierror"
	"github.com/eastwest/labourlink/services/platform/authz"
	"github.com/eastwest/labourlink/services/platform/identity"
)

//go:embed assets/page.html assets/style.css
var assets embed.FS

var page = template.Must(template.New("page.html").Funcs(funcs).ParseFS(assets, "assets/page.html"))

var style = func() template.CSS {
	b, err := assets.ReadFile("assets/style.css")
	if err != nil {
		panic(err) // embedded at build time
	}
	return template.CSS(b)
}()

// Config configures the dashboard of one service instance.
type Config struct {
	// Self is the serving instance's identity (its kind and region), whose authorisation
	// policy decides TLS requests.
	Self identity.Identity
	// Pairings is consulted by the policy of a receiving service; nil for the default table.
	Pairings authz.Pairings
	// Loader loads the figures.
	Loader Loader
}

// Handler returns the dashboard page. Mounted at /dashboard/ (any path under it serves the
// page). Query parameters: lang=zh|en (else the Accept-Language header; English when it names
// neither), region=CODE (a province; a province's caller sees its own by default).
//
// Without TLS (the local federation) every request is served. With TLS the request must carry
// a verified client certificate of the federation, and every figure is loaded only if that
// identity may call the read RPC that returns it; else the answer is 403.
func Handler(cfg Config) (http.Handler, error) {
	var az *authz.Authorizer
	if cfg.Self.Role != "" {
		a, err := authz.New(cfg.Self, cfg.Pairings)
		if err != nil {
			return nil, err
		}
		az = a
	}
	return &handler{cfg: cfg, az: az}, nil
}

type handler struct {
	cfg Config
	az  *authz.Authorizer
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the dashboard is read-only", http.StatusMethodNotAllowed)
		return
	}
	lang := Lang(r)
	req := Request{Region: r.URL.Query().Get("region"), Allow: allowAll}
	if r.TLS != nil {
		caller, err := callerOf(r)
		if err != nil {
			h.fail(w, lang, http.StatusForbidden, err)
			return
		}
		if h.az == nil {
			h.fail(w, lang, http.StatusForbidden, fmt.Errorf("no authorisation policy"))
			return
		}
		if req.Region == "" && caller.Region != "" {
			req.Region = caller.Region
		}
		req.Allow = func(ctx context.Context, method string, m proto.Message) error {
			return h.az.Authorize(ctx, method, caller, m)
		}
	}
	p, err := h.cfg.Loader.LoadDashboard(r.Context(), req)
	if err != nil {
		h.fail(w, lang, httpStatus(err), err)
		return
	}
	var buf bytes.Buffer
	if err := page.Execute(&buf, view{Page: p, Lang: lang, T: catalog[lang], Style: style, Charts: chartsOf(p)}); err != nil {
		h.fail(w, lang, http.StatusInternalServerError, fmt.Errorf("render: %w", err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", lang)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	w.Header().Set("Vary", "Accept-Language")
	_, _ = w.Write(buf.Bytes())
}

func allowAll(context.Context, string, proto.Message) error { return nil }

// callerOf is the identity of the request's verified client certificate.
func callerOf(r *http.Request) (identity.Identity, error) {
	if len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return identity.Identity{}, fmt.Errorf("%w: no verified client certificate", identity.ErrNoIdentity)
	}
	return identity.Parse(r.TLS.VerifiedChains[0][0])
}

// httpStatus maps a Loader's error (a domain error of services/platform/apierror, or a gRPC
// status) to an HTTP status.
func httpStatus(err error) int {
	switch {
	case errors.Is(err, apierror.ErrPermissionDenied):
		return http.StatusForbidden
	case errors.Is(err, apierror.ErrInvalidArgument), errors.Is(err, apierror.ErrFailedPrecondition):
		return http.StatusBadRequest
	case errors.Is(err, apierror.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, apierror.ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	switch status.Code(err) {
	case codes.PermissionDenied, codes.Unauthenticated:
		return http.StatusForbidden
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.NotFound:
		return http.StatusNotFound
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// fail writes a short error page. Refusals and bad requests say why (the API would say it
// too); other errors say nothing of their cause.
func (h *handler) fail(w http.ResponseWriter, lang string, code int, err error) {
	msg := catalog[lang]["error"]
	if code == http.StatusForbidden || code == http.StatusBadRequest || code == http.StatusNotFound {
		msg += ": " + err.Error()
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Language", lang)
	w.WriteHeader(code)
	_, _ = fmt.Fprintln(w, msg)
}

var matcher = language.NewMatcher([]language.Tag{language.English, language.SimplifiedChinese})

// Lang is the page's language for r: "zh" or "en", from ?lang= or else Accept-Language
// (English when it names neither language).
func Lang(r *http.Request) string {
	switch q := r.URL.Query().Get("lang"); q {
	case "zh", "en":
		return q
	}
	tags, _, err := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	if err != nil || len(tags) == 0 {
		return "en"
	}
	_, i, conf := matcher.Match(tags...)
	if i == 1 && conf != language.No {
		return "zh"
	}
	return "en"
}

type view struct {
	*Page
	Lang   string
	T      map[string]string
	Style  template.CSS
	Charts charts
}

// HandlerOrLog is Handler for a service's Dashboard method: a configuration it cannot use
// (an identity that is not a service's) is logged and served as 404.
func HandlerOrLog(cfg Config, lg *zap.Logger) http.Handler {
	h, err := Handler(cfg)
	if err != nil {
		lg.Error("dashboard", zap.Error(err))
		return http.NotFoundHandler()
	}
	return h
}
