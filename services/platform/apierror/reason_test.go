package apierror_test

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/eastwest/labourlink/proto/labourlink"
	commonv1 "github.com/eastwest/labourlink/proto/labourlink/common/v1"
	"github.com/eastwest/labourlink/services/platform/apierror"
)

// upperSnake is the shape of a wire reason.
var upperSnake = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$`)

func errorReasonValues() protoreflect.EnumValueDescriptors {
	return commonv1.ErrorReason(0).Descriptor().Values()
}

// TestReasonRoundTrip walks the enum: every value but the zero one has an UPPER_SNAKE wire form
// (its name without ERROR_REASON_) that parses back to it, and no two values share one.
func TestReasonRoundTrip(t *testing.T) {
	seen := map[string]protoreflect.Name{}
	vals := errorReasonValues()
	for i := 0; i < vals.Len(); i++ {
		v := vals.Get(i)
		r := commonv1.ErrorReason(v.Number())
		got := apierror.Reason(r)
		if r == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
			if got != "" {
				t.Errorf("Reason(%s) = %q, want \"\"", v.Name(), got)
			}
			continue
		}
		if want := strings.TrimPrefix(string(v.Name()), "ERROR_REASON_"); got != want || !upperSnake.MatchString(got) {
			t.Errorf("Reason(%s) = %q, want UPPER_SNAKE %q", v.Name(), got, want)
		}
		if back := apierror.ParseReason(got); back != r {
			t.Errorf("ParseReason(%q) = %v, want %v", got, back, r)
		}
		if other, dup := seen[got]; dup {
			t.Errorf("%s and %s have the same wire form %q", other, v.Name(), got)
		}
		seen[got] = v.Name()
	}
	for _, s := range []string{"", "PEER", "vacancy_closed", "ERROR_REASON_VACANCY_CLOSED", "UNSPECIFIED", "ERROR_REASON_UNSPECIFIED"} {
		if got := apierror.ParseReason(s); got != commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
			t.Errorf("ParseReason(%q) = %v, want ERROR_REASON_UNSPECIFIED", s, got)
		}
	}
	if got := apierror.Reason(commonv1.ErrorReason(1 << 20)); got != "" {
		t.Errorf("Reason(unknown number) = %q, want \"\"", got)
	}
}

// wireReasons are the reasons the services sent before the enum existed, exactly as clients see
// them. A value may be added to the enum; none of these may ever change or go away.
var wireReasons = []string{
	"INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "FAILED_PRECONDITION", "ABORTED", "PERMISSION_DENIED",
	"RESOURCE_EXHAUSTED", "UNAVAILABLE", "DEADLINE_EXCEEDED",
	"STORAGE_FULL", "TOO_MANY_STREAMS", "TOO_MANY_CALLS", "STREAM_IDLE_TIMEOUT",
	"NOT_PAIRED", "NO_RULE", "CALLER_NOT_ALLOWED", "REGION_MISMATCH", "NO_IDENTITY", "FULL_VIEW_NOT_ALLOWED",
	"ROLE_MISMATCH", "NOT_OWNER",
	"VACANCY_CLOSED", "VACANCY_EXPIRED", "HEADCOUNT_FULL", "HEADCOUNT_BELOW_RESERVED", "WORKER_NOT_OF_REGION",
	"CANDIDATE_ALREADY_DECIDED", "CANDIDATE_WITHDRAWN", "CANDIDATE_NOT_ACCEPTED", "WORKER_ALREADY_HERE",
	"BATCH_CANCELLED", "BATCH_DEPARTED", "ARRIVAL_ALREADY_CONFIRMED", "ALREADY_ONBOARDED", "NOT_ARRIVED",
	"NOT_ONBOARDED", "CHECKPOINT_ALREADY_RECORDED", "ALREADY_LEFT", "REVISION_COMPACTED", "REVISION_AHEAD",
	"REPLICA_STALE", "MATCH_RUN_IN_PROGRESS", "ILLEGAL_STATUS_TRANSITION", "WORKER_ERASED", "WORKER_NOT_ACCEPTED",
	"MIXED_DESTINATIONS", "BATCH_NOT_PLANNED", "UNKNOWN_MESSAGE_TYPE", "UNDECODABLE",
	"ROLE_CONFLICT", "ROLE_UNKNOWN", "EVENT_ID_REUSED", "BATCH_REGIONS_DIFFER", "NOT_A_LEDGER_EVENT",
	"ALREADY_DECIDED",
	"ETAG_MISMATCH",
	"LOCAL_EMPLOYER_FULL", "LOCAL_EMPLOYER_NOT_RESUMED",
}

func TestWireReasonsUnchanged(t *testing.T) {
	for _, s := range wireReasons {
		r := apierror.ParseReason(s)
		if r == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED || apierror.Reason(r) != s {
			t.Errorf("wire reason %q is no longer an ErrorReason (ParseReason gives %v)", s, r)
		}
	}
	if n := errorReasonValues().Len() - 1; n != len(wireReasons) {
		t.Errorf("ErrorReason has %d reasons, wireReasons lists %d: add a new reason to wireReasons too", n, len(wireReasons))
	}
}

// TestDefaultReasonsAreEnumValues checks the reasons Status and Refusal choose themselves.
func TestDefaultReasonsAreEnumValues(t *testing.T) {
	for _, sentinel := range []error{
		apierror.ErrStorageFull, apierror.ErrInvalidArgument, apierror.ErrNotFound, apierror.ErrAlreadyExists,
		apierror.ErrFailedPrecondition, apierror.ErrAborted, apierror.ErrPermissionDenied,
		apierror.ErrResourceExhausted, apierror.ErrUnavailable, apierror.ErrDeadlineExceeded,
	} {
		var reason string
		for _, d := range apierror.Status(sentinel).Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok {
				reason = info.GetReason()
			}
		}
		if apierror.ParseReason(reason) == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
			t.Errorf("Status(%v) gives reason %q, not an ErrorReason", sentinel, reason)
		}
		if r, ok := apierror.Refusal(0, "x", "", sentinel); ok && apierror.ParseReason(r.GetReason()) == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
			t.Errorf("Refusal(%v) gives reason %q, not an ErrorReason", sentinel, r.GetReason())
		}
	}
	e := apierror.FailedPrecondition(commonv1.ErrorReason_ERROR_REASON_VACANCY_CLOSED, "closed")
	if e.Reason() != "VACANCY_CLOSED" || e.ErrorReason() != commonv1.ErrorReason_ERROR_REASON_VACANCY_CLOSED {
		t.Errorf("Reason, ErrorReason = %q, %v", e.Reason(), e.ErrorReason())
	}
	if !errors.Is(e, apierror.ErrFailedPrecondition) {
		t.Error("FailedPrecondition does not wrap ErrFailedPrecondition")
	}
}

// TestEveryReasonDocumented checks that each value says when it is given and what to do, in the
// descriptors server reflection serves.
func TestEveryReasonDocumented(t *testing.T) {
	files, err := labourlink.Files()
	if err != nil {
		t.Fatal(err)
	}
	d, err := files.FindDescriptorByName(commonv1.ErrorReason(0).Descriptor().FullName())
	if err != nil {
		t.Fatalf("ErrorReason is not in the embedded descriptors (run bash .ci/gen): %v", err)
	}
	vals := d.(protoreflect.EnumDescriptor).Values()
	if vals.Len() != errorReasonValues().Len() {
		t.Fatalf("embedded descriptors have %d ErrorReason values, generated code %d: run bash .ci/gen", vals.Len(), errorReasonValues().Len())
	}
	for i := 0; i < vals.Len(); i++ {
		v := vals.Get(i)
		if doc := strings.TrimSpace(v.ParentFile().SourceLocations().ByDescriptor(v).LeadingComments); len(doc) < 10 {
			t.Errorf("%s has no doc comment", v.Name())
		}
	}
}

// reasonLiterals returns the UPPER_SNAKE string literals of a Go file that are used as error
// reasons: arguments of apierror calls (and of a package's own reason helpers, such as authz's
// refusal), values of a Reason field, operands compared with a reason (x.GetReason() == "...",
// errorReason(err) != "..."), cases of a switch on a reason, and keys and values of a map named
// for reasons.
func reasonLiterals(fset *token.FileSet, file *ast.File) []string {
	var found []string
	report := func(e ast.Expr) {
		lit, ok := ast.Unparen(e).(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return
		}
		s, err := strconv.Unquote(lit.Value)
		if err != nil || len(s) < 2 || !upperSnake.MatchString(s) {
			return
		}
		found = append(found, fset.Position(lit.Pos()).String()+": "+lit.Value)
	}
	mentionsReason := func(e ast.Expr) bool {
		hit := false
		ast.Inspect(e, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok && strings.Contains(strings.ToLower(id.Name), "reason") {
				hit = true
			}
			return !hit
		})
		return hit
	}
	isReasonCall := func(fun ast.Expr) bool {
		switch f := fun.(type) {
		case *ast.SelectorExpr:
			if x, ok := f.X.(*ast.Ident); ok && x.Name == "apierror" {
				return true
			}
		case *ast.Ident:
			switch f.Name {
			case "New", "FailedPrecondition", "PermissionDenied", "Aborted", "ResourceExhausted", "DeadlineExceeded",
				"InvalidField", "Reason", "ParseReason", "refusal":
				return true
			}
		}
		return false
	}
	ast.Inspect(file, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			if isReasonCall(n.Fun) {
				for _, a := range n.Args {
					report(a)
				}
			}
		case *ast.KeyValueExpr:
			if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Reason" {
				report(n.Value)
			}
		case *ast.BinaryExpr:
			if n.Op == token.EQL || n.Op == token.NEQ {
				if mentionsReason(n.X) {
					report(n.Y)
				}
				if mentionsReason(n.Y) {
					report(n.X)
				}
			}
		case *ast.SwitchStmt:
			if n.Tag != nil && mentionsReason(n.Tag) {
				for _, c := range n.Body.List {
					for _, e := range c.(*ast.CaseClause).List {
						report(e)
					}
				}
			}
		case *ast.ValueSpec:
			for i, name := range n.Names {
				if !strings.Contains(strings.ToLower(name.Name), "reason") || i >= len(n.Values) {
					continue
				}
				report(n.Values[i])
				if cl, ok := n.Values[i].(*ast.CompositeLit); ok {
					for _, el := range cl.Elts {
						if kv, ok := el.(*ast.KeyValueExpr); ok {
							report(kv.Key)
							report(kv.Value)
						}
					}
				}
			}
		}
		return true
	})
	return found
}

// TestNoLiteralReasons fails when code in services/ or cmd/ gives or compares an error reason as
// a string literal: reasons are commonv1.ErrorReason values (apierror.Reason for the wire form,
// apierror.ParseReason to read one). Tests may compare with literals: that pins the wire.
func TestNoLiteralReasons(t *testing.T) {
	fset := token.NewFileSet()
	files := 0
	for _, root := range []string{"../../../services", "../../../cmd"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			files++
			for _, hit := range reasonLiterals(fset, file) {
				t.Errorf("%s: a literal error reason; use a commonv1.ErrorReason value (add one to common.proto if none fits)", hit)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if files < 50 {
		t.Fatalf("scanned only %d files: wrong root?", files)
	}
}

// TestReasonLiteralsScanner proves the scanner sees each kind of literal reason it looks for.
func TestReasonLiteralsScanner(t *testing.T) {
	const src = `package p
var reasonHints = map[string]string{"STORAGE_FULL": "free space"}
var defaultReason = map[int]string{5: "NOT_FOUND"}
func f(info interface{ GetReason() string }, err error) {
	_ = apierror.New(apierror.ErrInvalidArgument, "EVENT_ID_REUSED", "x")
	_ = refusal("NOT_PAIRED", "x")
	_ = outbox.Refusal{Reason: "UNDECODABLE"}
	if info.GetReason() == "REVISION_COMPACTED" {}
	if "REPLICA_STALE" != errorReason(err) {}
	switch info.GetReason() {
	case "REVISION_AHEAD":
	}
	_ = fmt.Sprintf("NOT_A_REASON_HERE %s", "FINE")
	_ = pem.Block{Type: "CERTIFICATE"}
	if os.Getenv("GOFAIL_HTTP") != "" {}
}`
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := reasonLiterals(fset, file)
	want := []string{"STORAGE_FULL", "NOT_FOUND", "EVENT_ID_REUSED", "NOT_PAIRED", "UNDECODABLE", "REVISION_COMPACTED", "REPLICA_STALE", "REVISION_AHEAD"}
	if len(got) != len(want) {
		t.Fatalf("found %d literals, want %d: %q", len(got), len(want), got)
	}
	for i, w := range want {
		if !strings.HasSuffix(got[i], `"`+w+`"`) {
			t.Errorf("literal %d = %s, want %q", i, got[i], w)
		}
	}
}
