package monitoring

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

// promtool returns the path of Debian's promtool. The tests need the real
// tool, so its absence fails them with what to install rather than skipping.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (%v): install Debian's prometheus package (apt-get install prometheus); scripts/test-deps, which make test runs first, does", err)
	}
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func alertRules(t *testing.T) []Rule {
	t.Helper()
	f, err := Alerts()
	if err != nil {
		t.Fatal(err)
	}
	var rules []Rule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatal("alerts.yml has no rules")
	}
	return rules
}

func TestAlertsPassPromtoolCheckRules(t *testing.T) {
	rules := alertRules(t)
	out := run(t, promtool(t), "check", "rules", "alerts.yml")
	if want := "SUCCESS: " + strconv.Itoa(len(rules)) + " rules found"; !strings.Contains(out, want) {
		t.Errorf("promtool did not find the %d rules of alerts.yml:\n%s", len(rules), out)
	}
}

// The alerts the issue asks for are there, each with a severity, a summary,
// and a for: long enough that one bad scrape does not page anyone.
func TestAlertsAreTheOnesWanted(t *testing.T) {
	var names []string
	for _, r := range alertRules(t) {
		names = append(names, r.Alert)
		if r.Labels["severity"] != "critical" && r.Labels["severity"] != "warning" {
			t.Errorf("%s: severity %q, want critical or warning", r.Alert, r.Labels["severity"])
		}
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("%s has no summary or description", r.Alert)
		}
		d, err := model.ParseDuration(r.For)
		if err != nil || time.Duration(d) < time.Minute || time.Duration(d) > 30*time.Minute {
			t.Errorf("%s: for %q, want 1 to 30 minutes", r.Alert, r.For)
		}
		if _, err := Metrics(r.Expr); err != nil {
			t.Errorf("%s: %v", r.Alert, err)
		}
	}
	for _, want := range []string{
		"FoodpipeConsumerDown", "FoodpipeConsumerLagGrowing", "FoodpipeConsumerNoProgress",
		"FoodpipeDatabaseBreakerOpen", "FoodpipeDeadLetters", "FoodpipeRebalanceStorm", "FoodpipeEndToEndLatencyHigh",
		"FoodpipeMessagesExpired",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("alerts.yml has no %s", want)
		}
	}
}

// unitTests is the part of promtool's unit test file that says which alerts
// are expected when.
type unitTests struct {
	RuleFiles []string `json:"rule_files"`
	Tests     []struct {
		AlertRuleTest []struct {
			AlertName string `json:"alertname"`
			ExpAlerts []any  `json:"exp_alerts"`
		} `json:"alert_rule_test"`
	} `json:"tests"`
}

// promtool runs alerts_test.yml, and that file tests every alert both where
// it must fire and where it must not.
func TestAlertsUnitTests(t *testing.T) {
	out := run(t, promtool(t), "test", "rules", "alerts_test.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules:\n%s", out)
	}
	b, err := os.ReadFile("alerts_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	var ut unitTests
	if err := yaml.Unmarshal(b, &ut); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ut.RuleFiles, []string{"alerts.yml"}) {
		t.Errorf("alerts_test.yml tests %v, want alerts.yml", ut.RuleFiles)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range ut.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.AlertName] = true
			} else {
				silent[a.AlertName] = true
			}
		}
	}
	for _, r := range alertRules(t) {
		if !fires[r.Alert] || !silent[r.Alert] {
			t.Errorf("alerts_test.yml must test %s firing (%v) and not firing (%v)", r.Alert, fires[r.Alert], silent[r.Alert])
		}
	}
}

// The compose Prometheus's configuration is one promtool accepts, with the
// rules it names (mounted at /etc/prometheus in the container) taken from here.
func TestPrometheusConfigPassesPromtool(t *testing.T) {
	b, err := os.ReadFile("prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	const mounted = "/etc/prometheus/alerts.yml"
	if !strings.Contains(string(b), mounted) {
		t.Fatalf("prometheus.yml does not load %s", mounted)
	}
	cfg := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(string(b), mounted, abs)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(t, promtool(t), "check", "config", cfg)
	if !strings.Contains(out, "SUCCESS: 1 rule files found") {
		t.Errorf("promtool check config:\n%s", out)
	}
}

// The dashboard decodes strictly, queries the provisioned data source, and
// shows every alert's subject.
func TestDashboard(t *testing.T) {
	d, err := LoadDashboard()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("grafana", "provisioning", "datasources", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var provisioned struct {
		APIVersion  int `json:"apiVersion"`
		Datasources []struct {
			Name      string `json:"name"`
			UID       string `json:"uid"`
			Type      string `json:"type"`
			Access    string `json:"access"`
			URL       string `json:"url"`
			IsDefault bool   `json:"isDefault"`
			Editable  bool   `json:"editable"`
		} `json:"datasources"`
	}
	if err := yaml.UnmarshalStrict(b, &provisioned); err != nil {
		t.Fatal(err)
	}
	if len(provisioned.Datasources) != 1 || provisioned.Datasources[0].Type != "prometheus" {
		t.Fatalf("provisioned data sources %+v, want one Prometheus", provisioned.Datasources)
	}
	if !provisioned.Datasources[0].IsDefault {
		t.Error("the provisioned Prometheus is not the default data source, which the dashboard's $datasource picks first")
	}
	// Not a uid of its own: kube-prometheus-stack's Prometheus is "prometheus",
	// compose's "foodpipe-prometheus", others others. The dashboard asks.
	want := Datasource{Type: "prometheus", UID: "${datasource}"}
	vars := map[string]map[string]any{}
	for _, raw := range d.Templating.List {
		var v map[string]any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		name, _ := v["name"].(string)
		vars[name] = v
	}
	if v := vars["datasource"]; v["type"] != "datasource" || v["query"] != "prometheus" {
		t.Errorf("no data source variable of Prometheus's: %v", v)
	}
	for _, name := range []string{"namespace", "instance"} {
		if v := vars[name]; v["type"] != "query" || v["includeAll"] != true || v["allValue"] != ".*" {
			t.Errorf("variable %s: %v, want a query with All as .*", name, v)
		}
	}
	if d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard uid %q with %d panels", d.UID, len(d.Panels))
	}
	ids := map[int]bool{}
	var descriptions strings.Builder
	for i, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel %q repeats id %d", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.Datasource != want {
			t.Errorf("panel %q queries %+v, want the provisioned %+v", p.Title, p.Datasource, want)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource != want {
				t.Errorf("panel %q target %s queries %+v", p.Title, tg.RefID, tg.Datasource)
			}
			if _, err := Metrics(tg.Expr); err != nil {
				t.Errorf("panel %q target %s: %v", p.Title, tg.RefID, err)
			}
			// On a shared Prometheus, each selector keeps to the chosen
			// namespace: staging and production never sum together.
			for _, sel := range selectors(t, tg.Expr) {
				if !slices.ContainsFunc(sel.LabelMatchers, func(m *labels.Matcher) bool {
					return m.Name == "namespace" && m.Type == labels.MatchRegexp && m.Value == "$namespace"
				}) {
					t.Errorf("panel %q target %s: %s is not kept to $namespace", p.Title, tg.RefID, sel)
				}
			}
		}
		// Panels must not overlap, or Grafana moves them about.
		for _, q := range d.Panels[:i] {
			a, b := p.GridPos, q.GridPos
			if a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H {
				t.Errorf("panels %q and %q overlap", p.Title, q.Title)
			}
		}
		descriptions.WriteString(p.Description)
	}
	for _, r := range alertRules(t) {
		if !strings.Contains(descriptions.String(), r.Alert) {
			t.Errorf("no panel shows what %s alerts on (no description names it)", r.Alert)
		}
	}
}

// The dashboard's queries also go through promtool, as recording rules in a
// scratch file: that is the PromQL of the Prometheus the tests run, which may
// be older than the parser this module builds with.
func TestDashboardQueriesPassPromtool(t *testing.T) {
	qs, err := Queries()
	if err != nil {
		t.Fatal(err)
	}
	type record struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	var recs []record
	for i, q := range qs {
		recs = append(recs, record{Record: "foodpipe:query" + strconv.Itoa(i), Expr: q.Expr})
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "queries", "rules": recs}}})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "queries.yml")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(t, promtool(t), "check", "rules", f)
	if want := "SUCCESS: " + strconv.Itoa(len(qs)) + " rules found"; !strings.Contains(out, want) {
		t.Errorf("promtool check rules on the %d queries:\n%s", len(qs), out)
	}
}

func TestMetricsNamesWhatQueriesSelect(t *testing.T) {
	got, err := Metrics(`sum(rate(a_total[5m])) > 0 and absent(up{job="consumer"}) or histogram_quantile(0.99, sum by (le) (rate(a_total[1m])))`)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"a_total", "up"}) {
		t.Errorf("Metrics = %v, want [a_total up]", got)
	}
	if _, err := Metrics("sum(rate(a[5m])"); err == nil {
		t.Error("an unbalanced parenthesis parsed")
	}
	all, err := AllMetrics()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"foodpipe_consumer_lag", "foodpipe_db_breaker_open", "foodpipe_e2e_latency_seconds_bucket", "up"} {
		if !slices.Contains(all, want) {
			t.Errorf("AllMetrics lacks %s: %v", want, all)
		}
	}
}

// selectors returns the vector selectors of expr.
func selectors(t *testing.T, expr string) []*parser.VectorSelector {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Fatalf("parse %q: %v", expr, err)
	}
	var out []*parser.VectorSelector
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs)
		}
		return nil
	})
	return out
}
