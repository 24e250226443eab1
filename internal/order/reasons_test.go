package order

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strings"
	"testing"
)

// Reasons holds every constant of type Reason declared in the package, each
// once: a reason added to the const block but not to Reasons would have no
// metric series until it first happens. The constants are read from the
// source, so the test needs no list of its own to keep in step.
func TestReasonsListsEveryDeclaredReason(t *testing.T) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var declared []Reason
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, e.Name(), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Reason" {
					continue
				}
				for _, v := range vs.Values {
					lit := v.(*ast.BasicLit)
					declared = append(declared, Reason(strings.Trim(lit.Value, `"`)))
				}
			}
		}
	}
	if len(declared) == 0 {
		t.Fatal("found no Reason constants")
	}
	for _, r := range declared {
		if !slices.Contains(Reasons, r) {
			t.Errorf("Reasons lacks %s", r)
		}
	}
	seen := map[Reason]bool{}
	for _, r := range Reasons {
		if seen[r] {
			t.Errorf("Reasons lists %s twice", r)
		}
		seen[r] = true
	}
	if len(Reasons) != len(declared) {
		t.Errorf("Reasons has %d entries, the package declares %d reasons", len(Reasons), len(declared))
	}
}
