package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// module is the module's path; the packages in the rules are named below it.
const module = "foodpipe"

// rule says which foodpipe packages one package may import (its files that
// are not tests), and why. Tests may import more: they assemble real parts
// (a harness test runs the binary through cli, e2e starts whole pipelines).
type rule struct {
	pkg string
	may []string
	why string
	// never are import paths (or their prefixes) the package must not
	// depend on, directly or through another package.
	never []string
}

// The layers, bottom up. Each rule below lists what its package may import;
// a package not listed may not be imported. Data flows one way: order ←
// producer/consumer ← wire ← harness ← measure, demo, lab ← cli ← main;
// report, which cli prints with, renders what measure, demo, inspect and the
// leaves return.
var (
	// foundation imports no foodpipe package.
	foundation = []string{"internal/order", "internal/secret", "internal/fault", "migrations"}
	// leaves are below the producer and the consumer, which are handed them.
	leaves = join(foundation, "internal/kafka", "internal/telemetry", "internal/config", "internal/store", "internal/dlq", "internal/mail")
	// ends are the pipeline's two ends; neither imports the other.
	ends = join(leaves, "internal/producer", "internal/consumer", "internal/notify")
	// assembled is everything the harness puts together, and the read model.
	assembled = join(ends, "internal/wire", "internal/localpg", "internal/harness", "internal/inspect")
)

var rules = []rule{
	{"internal/order", nil, "order is the domain: it imports no other foodpipe package, and neither kgo nor pgx",
		[]string{"github.com/twmb/franz-go", "github.com/jackc/pgx", module + "/"}},
	{"internal/secret", nil, "secret is a leaf", nil},
	{"internal/fault", nil, "fault is a leaf", nil},
	{"migrations", nil, "migrations are SQL files, embedded", nil},

	{"internal/kafka", nil, "kafka is a leaf: client options, topic admin, inspection, the embedded broker", nil},
	{"internal/telemetry", nil, "telemetry is a leaf, handed what it must know (the reasons, telemetry.Options), never importing it", nil},
	{"internal/config", []string{"internal/secret"}, "config is a leaf", nil},
	{"internal/localpg", []string{"internal/secret"}, "localpg is a leaf", nil},
	{"internal/store", []string{"internal/order", "internal/secret", "internal/fault", "migrations"}, "store is a leaf: PostgreSQL for the orders", nil},
	{"internal/store/dbtest", []string{"internal/store", "migrations"}, "dbtest is for tests, over the store (it names its template database by the migrations)", nil},
	{"internal/dlq", []string{"internal/order", "internal/kafka", "internal/store"}, "dlq is a leaf: the dead-letter record", nil},
	{"internal/mail", nil, "mail is a leaf: SMTP, the Message-ID, a test mail server's inbox", nil},

	{"internal/producer", leaves, "the producer is handed what it needs: it imports no consumer, and nothing that assembles it (wire, harness, cli, lab, measure)", nil},
	{"internal/consumer", leaves, "the consumer is handed what it needs: it imports no producer, and nothing that assembles it (wire, harness, cli, lab, measure)", nil},
	{"internal/notify", leaves, "notify is the notifier's store, which a consumer is handed: it imports no consumer, no producer, and nothing that assembles it", nil},

	{"internal/wire", ends, "wire is the production wiring: it knows no harness and no test", nil},
	{"internal/harness", join(ends, "internal/wire", "internal/localpg", "internal/semantics", "internal/inspect"), "the harness assembles a pipeline from wire and below, and the teaching groups beside it (read through inspect); it knows no command", nil},
	{"internal/inspect", leaves, "inspect is a read model of Kafka and the database, below the commands and the lab", nil},
	{"internal/semantics", leaves, "semantics' teaching members are built on kgo beside the pipeline: it imports no consumer, so that a reader of internal/consumer never meets them, and nothing that assembles it", nil},

	{"internal/measure", assembled, "measure runs pipelines through the harness; it knows no command, no lab, no demo", nil},
	{"internal/demo", join(assembled, "internal/semantics"), "demo runs the demo's scenario through the harness, as measure runs bench and soak; it knows no command, no lab", nil},
	{"internal/lab", join(assembled, "internal/semantics"), "the lab runs a pipeline through the harness; it knows no command, no measure, no demo", nil},

	{"internal/report", []string{"internal/kafka", "internal/store", "internal/dlq", "internal/inspect", "internal/measure", "internal/demo", "internal/semantics", "internal/mail"},
		"report turns what those packages return into text: it runs nothing, wires nothing (no wire, no harness) and knows no command, no lab", nil},

	{"internal/cli", join(assembled, "internal/semantics", "internal/measure", "internal/demo", "internal/lab", "internal/report"), "cli is the top: only cmd/foodpipe imports it", nil},
	{"cmd/foodpipe", []string{"internal/cli"}, "main calls cli.Main and nothing else", nil},

	{"e2e", nil, "e2e is tests only", nil},
	{"deploy", nil, "deploy's Go files are tests of the deployment files", nil},
	{"deploy/monitoring", nil, "monitoring reads the alerts and the dashboard for tests", nil},
	{"internal/archtest", nil, "archtest is this test", nil},
}

// symbolRule says that a symbol, named as types.Object names it (a method
// as "(*pkg.Type).Name"), may be used only in the packages of onlyIn.
type symbolRule struct {
	symbol string
	onlyIn []string
	why    string
}

var symbolRules = []symbolRule{
	{"(*foodpipe/internal/store.Store).Bench", []string{"internal/store", "internal/measure"},
		"Bench() is `foodpipe bench`'s alone: it empties and bypasses the orders table (store.Empty empties a run's own database)"},
}

// silent are packages that return data and never print (as goose's
// Provider.Status returns rows): the command line prints.
var silent = []string{"internal/store", "internal/inspect"}

// handed are packages that print only on the io.Writer they are handed
// (report): never on the process's own streams, which the command line
// chooses.
var handed = []string{"internal/report"}

// printing is what a package that never prints may not use.
var printing = []string{"fmt.Print", "fmt.Printf", "fmt.Println", "fmt.Fprint", "fmt.Fprintf", "fmt.Fprintln",
	"os.Stdout", "os.Stderr", "text/tabwriter.NewWriter"}

func join(sets []string, more ...string) []string {
	return append(slices.Clone(sets), more...)
}

// listed is what `go list` says of one package.
type listed struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
	Deps       []string
	Export     string
	Module     *struct{ Path string }
	Error      *struct{ Err string }
}

// list runs `go list -deps -json` on the module's packages: the packages
// with their imports and, with export, every dependency with its export
// data, which the type check of the symbol rules reads (it builds them all,
// as go build does).
func list(t *testing.T, export bool) (own []listed, exports map[string]string) {
	t.Helper()
	args := []string{"list", "-e", "-deps", "-json=ImportPath,Dir,GoFiles,Imports,Deps,Export,Module,Error"}
	if export {
		args = append(args, "-export")
	}
	cmd := exec.Command("go", append(args, module+"/...")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	exports = map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		if p.Error != nil {
			t.Errorf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		exports[p.ImportPath] = p.Export
		if p.Module != nil && p.Module.Path == module {
			own = append(own, p)
		}
	}
	if len(own) == 0 {
		t.Fatal("go list found no package of the module")
	}
	return own, exports
}

func short(path string) string { return strings.TrimPrefix(path, module+"/") }

func ruleFor(pkg string) (rule, bool) {
	for _, r := range rules {
		if r.pkg == pkg {
			return r, true
		}
	}
	return rule{}, false
}

func TestEveryPackageImportsOnlyWhatItsRuleAllows(t *testing.T) {
	own, _ := list(t, false)
	for _, p := range own {
		pkg := short(p.ImportPath)
		r, ok := ruleFor(pkg)
		if !ok {
			t.Errorf("add a rule for package %s to rules in internal/archtest/imports_test.go (and ARCHITECTURE.md, Import rules): "+
				"it imports %s", pkg, strings.Join(foodpipeImports(p.Imports), ", "))
			continue
		}
		for _, imp := range foodpipeImports(p.Imports) {
			if !slices.Contains(r.may, imp) {
				t.Errorf("%s imports %s, which its rule does not allow: %s (it may import %s)", pkg, imp, r.why, allowed(r))
			}
		}
		for _, never := range r.never {
			if i := slices.IndexFunc(p.Deps, func(d string) bool { return strings.HasPrefix(d, never) }); i >= 0 {
				t.Errorf("%s depends on %s, directly or through another package, which its rule forbids: %s", pkg, p.Deps[i], r.why)
			}
		}
	}
}

// foodpipeImports returns the module's packages among imports, named short.
func foodpipeImports(imports []string) []string {
	var out []string
	for _, imp := range imports {
		if strings.HasPrefix(imp, module+"/") {
			out = append(out, short(imp))
		}
	}
	return out
}

func allowed(r rule) string {
	if len(r.may) == 0 {
		return "no foodpipe package"
	}
	return strings.Join(r.may, ", ")
}

// A rule for a package that has not landed yet is kept (internal/inspect,
// internal/demo), but a rule must not allow what its package's own layer
// forbids: nothing below cli may import cli, and no rule names a package
// twice.
func TestTheRulesAreConsistent(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range rules {
		if seen[r.pkg] {
			t.Errorf("two rules for %s", r.pkg)
		}
		seen[r.pkg] = true
		if r.pkg != "cmd/foodpipe" && slices.Contains(r.may, "internal/cli") {
			t.Errorf("the rule for %s allows internal/cli: only cmd/foodpipe imports it", r.pkg)
		}
		if slices.Contains(r.may, r.pkg) {
			t.Errorf("the rule for %s allows itself", r.pkg)
		}
	}
	for _, r := range rules {
		for _, m := range r.may {
			if !seen[m] {
				t.Errorf("the rule for %s allows %s, which has no rule of its own", r.pkg, m)
			}
		}
	}
}

// uses type-checks the module's packages (their files that are not tests)
// against the export data of what they import, and returns, for each, the
// symbols it uses.
func uses(t *testing.T) map[string]map[string]token.Position {
	t.Helper()
	own, exports := list(t, true)
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		f := exports[path]
		if f == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	})
	out := map[string]map[string]token.Position{}
	for _, p := range own {
		if len(p.GoFiles) == 0 {
			continue
		}
		var files []*ast.File
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		info := &types.Info{Uses: map[*ast.Ident]types.Object{}, Selections: map[*ast.SelectorExpr]*types.Selection{}}
		if _, err := (&types.Config{Importer: imp}).Check(p.ImportPath, fset, files, info); err != nil {
			t.Fatalf("type-check %s: %v", p.ImportPath, err)
		}
		used := map[string]token.Position{}
		note := func(name string, pos token.Pos) {
			if _, ok := used[name]; !ok {
				used[name] = fset.Position(pos)
			}
		}
		for id, obj := range info.Uses {
			if obj.Pkg() != nil && obj.Parent() == obj.Pkg().Scope() {
				note(obj.Pkg().Path()+"."+obj.Name(), id.Pos())
			}
		}
		for sel, s := range info.Selections {
			if f, ok := s.Obj().(*types.Func); ok {
				note(f.FullName(), sel.Sel.Pos())
			}
		}
		out[short(p.ImportPath)] = used
	}
	return out
}

func TestSymbolsAreUsedOnlyWhereTheyBelong(t *testing.T) {
	used := uses(t)
	for _, r := range symbolRules {
		for pkg, syms := range used {
			if pos, ok := syms[r.symbol]; ok && !slices.Contains(r.onlyIn, pkg) {
				t.Errorf("%s uses %s (%s), which only %s may: %s", pkg, r.symbol, pos, strings.Join(r.onlyIn, ", "), r.why)
			}
		}
	}
	for _, pkg := range silent {
		for _, sym := range printing {
			if pos, ok := used[pkg][sym]; ok {
				t.Errorf("%s uses %s (%s): it returns data and never prints; the command line prints", pkg, sym, pos)
			}
		}
	}
	for _, pkg := range handed {
		for _, sym := range []string{"fmt.Print", "fmt.Printf", "fmt.Println", "os.Stdout", "os.Stderr"} {
			if pos, ok := used[pkg][sym]; ok {
				t.Errorf("%s uses %s (%s): it writes only on the io.Writer it is handed", pkg, sym, pos)
			}
		}
	}
}
