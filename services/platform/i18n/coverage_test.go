package i18n_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/eastwest/labourlink/services/platform/i18n"
)

// apierrorFormats is, per constructor of services/platform/apierror, the index of its format
// argument.
var apierrorFormats = map[string]int{
	"New": 2, "NotFound": 0, "AlreadyExists": 0, "FailedPrecondition": 1, "InvalidArgument": 0,
	"Aborted": 1, "PermissionDenied": 1, "Unavailable": 0, "ResourceExhausted": 1,
	"DeadlineExceeded": 1, "InvalidField": 2,
}

// codeFormats returns the literal English formats the code of the repository gives to the
// catalog, with where each is used: the reasons of field violations (Violations.Add / Addf in a
// file using apierror), the messages of apierror's constructors, the text of services/codes
// (validators of outside input, whose messages are row and field reasons: every fmt.Sprintf
// and fmt.Errorf format and every Reason / reason field), and in cmd/labourlink the messages
// given to tr, trf and table headers (newTable).
func codeFormats(t *testing.T, root string) map[string]string {
	t.Helper()
	found := map[string]string{}
	lit := literal
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && path != root || d.Name() == "proto") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(rel, "services/platform/i18n/") || strings.HasPrefix(rel, "services/devtools/") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, src, 0)
		if err != nil {
			return err
		}
		usesAPIError := strings.Contains(string(src), `platform/apierror"`)
		isCodes := strings.HasPrefix(rel, "services/codes/")
		isCLI := strings.HasPrefix(rel, "cmd/labourlink/")
		add := func(e ast.Expr) {
			if s, ok := lit(e); ok && translatable(s) {
				found[s] = rel + ":" + strconv.Itoa(fset.Position(e.Pos()).Line)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				// The message constants of services/codes (msgStoredAsNumber): formats too.
				for i, id := range n.Names {
					if isCodes && strings.HasPrefix(id.Name, "msg") && i < len(n.Values) {
						add(n.Values[i])
					}
				}
			case *ast.KeyValueExpr:
				if k, ok := n.Key.(*ast.Ident); ok && isCodes && (k.Name == "Reason" || k.Name == "reason") {
					add(n.Value)
				}
				if k, ok := n.Key.(*ast.Ident); ok && isCLI && k.Name == "summary" {
					add(n.Value) // a command's line in `labourlink help`
				}
			case *ast.CallExpr:
				var recv, name string
				switch fun := n.Fun.(type) {
				case *ast.SelectorExpr:
					name = fun.Sel.Name
					if id, ok := fun.X.(*ast.Ident); ok {
						recv = id.Name
					}
				case *ast.Ident:
					name = fun.Name
				}
				switch {
				case usesAPIError && (name == "Add" || name == "Addf") && len(n.Args) >= 2 && recv != "apierror":
					add(n.Args[1])
				case recv == "apierror":
					if i, ok := apierrorFormats[name]; ok && i < len(n.Args) {
						add(n.Args[i])
					}
				case recv == "i18n" && name == "Sprintf" && len(n.Args) >= 2:
					add(n.Args[1])
				case isCodes && recv == "fmt" && (name == "Sprintf" || name == "Errorf") && len(n.Args) >= 1:
					add(n.Args[0])
				case isCLI && recv == "" && (name == "tr" || name == "trf") && len(n.Args) >= 1:
					add(n.Args[0])
				case isCLI && (recv == "fmt" && name == "Errorf" || recv == "errors" && name == "New") && len(n.Args) >= 1:
					// The CLI's own errors, translated when printed (describeError).
					add(n.Args[0])
				case (isCLI || rel == "services/daemon/config.go") && recv != "" && flagUsageArg[name] > 0 && len(n.Args) == flagUsageArg[name]+1:
					// A flag's help (FlagSet.String(name, value, usage) ...), translated by
					// parseFlags.
					add(n.Args[flagUsageArg[name]])
				case recv == "" && name == "reject":
					// An import's row rejections (roster and vacancy imports): literal reasons,
					// and the formats of the reasons made with fmt.Sprintf.
					for _, a := range n.Args {
						add(a)
						if c, ok := a.(*ast.CallExpr); ok && len(c.Args) >= 1 {
							if sel, ok := c.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Sprintf" {
								add(c.Args[0])
							}
						}
					}
				case isCLI && recv == "" && name == "newTable":
					for _, a := range n.Args {
						add(a)
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// flagUsageArg is, per method of flag.FlagSet defining a flag, the index of its usage argument
// (the last one).
var flagUsageArg = map[string]int{
	"String": 2, "Int": 2, "Int64": 2, "Uint": 2, "Uint64": 2, "Bool": 2, "Duration": 2, "Float64": 2,
	"StringVar": 3, "IntVar": 3, "Int64Var": 3, "UintVar": 3, "Uint64Var": 3, "BoolVar": 3, "DurationVar": 3,
	"Float64Var": 3, "TextVar": 3, "Var": 2, "Func": 1, "BoolFunc": 1,
}

// literal is the text of a string literal, or of a sum of string literals ("a\n" + "b").
func literal(e ast.Expr) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(e.Value)
		return s, err == nil
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return "", false
		}
		a, ok := literal(e.X)
		b, ok2 := literal(e.Y)
		return a + b, ok && ok2
	}
	return "", false
}

// translatable reports whether s has words to translate: a letter outside its verbs.
func translatable(s string) bool {
	for _, r := range verbs.ReplaceAllString(s, "") {
		if unicode.IsLetter(r) {
			return true
		}
	}
	return false
}

var verbs = regexp.MustCompile(`%(?:%|[-+# 0]*(?:\[\d+\])?\d*(?:\.\d+)?[a-zA-Z])`)

// untranslated reads testdata/untranslated.txt: the formats known to lack a translation.
func untranslated(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "untranslated.txt"))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := strconv.Unquote(line)
		if err != nil {
			t.Fatalf("testdata/untranslated.txt: %q: %v", line, err)
		}
		m[s] = true
	}
	return m
}

// TestCatalogCoversCode fails when the code uses an English format that the catalog has no
// Chinese for: a reason, message or header added without its translation (add it to
// catalog_zh.go).
func TestCatalogCoversCode(t *testing.T) {
	found := codeFormats(t, filepath.Join("..", "..", ".."))
	if len(found) < 200 {
		t.Fatalf("found only %d formats in the code: the scan is broken", len(found))
	}
	pending := untranslated(t)
	var missing []string
	for s, where := range found {
		if !i18n.Has(s) && !pending[s] {
			missing = append(missing, strconv.Quote(s)+" // "+where)
		}
	}
	for s := range pending {
		if _, used := found[s]; !used || i18n.Has(s) {
			t.Errorf("testdata/untranslated.txt lists %q, which is translated or no longer used: remove the line", s)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%d formats used in code have no Chinese in services/platform/i18n/catalog_zh.go:\n%s", len(missing), strings.Join(missing, "\n"))
	}
}

// TestCLIPrintsThroughTheCatalog fails when cmd/labourlink prints a literal English text that
// does not go through tr (fmt.Fprintf(w, "format", ...) instead of fmt.Fprint(w, tr("format",
// ...))): it would be English in a Chinese locale. Text that reads the same in every language
// (a command line, an internal key) is listed in testdata/verbatim.txt.
func TestCLIPrintsThroughTheCatalog(t *testing.T) {
	verbatim := map[string]bool{}
	b, err := os.ReadFile(filepath.Join("testdata", "verbatim.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := strconv.Unquote(line)
		if err != nil {
			t.Fatalf("testdata/verbatim.txt: %q: %v", line, err)
		}
		verbatim[s] = true
	}
	dir := filepath.Join("..", "..", "..", "cmd", "labourlink")
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s: %v", dir, err)
	}
	used := map[string]bool{}
	var bad []string
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			c, ok := n.(*ast.CallExpr)
			if !ok || len(c.Args) < 2 {
				return true
			}
			sel, ok := c.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); !ok || id.Name != "fmt" || !strings.HasPrefix(sel.Sel.Name, "Fprint") {
				return true
			}
			s, ok := literal(c.Args[1])
			if !ok || !translatable(s) {
				return true
			}
			if verbatim[s] {
				used[s] = true
				return true
			}
			bad = append(bad, fmt.Sprintf("%s:%d: %q", filepath.Base(path), fset.Position(c.Pos()).Line, s))
			return true
		})
	}
	if len(bad) > 0 {
		t.Errorf("%d texts printed without tr (wrap them: fmt.Fprint(w, tr(format, args...)), and translate them in catalog_zh.go):\n%s", len(bad), strings.Join(bad, "\n"))
	}
	for s := range verbatim {
		if !used[s] {
			t.Errorf("testdata/verbatim.txt lists %q, which the CLI no longer prints: remove the line", s)
		}
	}
}
