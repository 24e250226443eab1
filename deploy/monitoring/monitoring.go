// Package monitoring holds foodpipe's Prometheus alerts and Grafana
// dashboard (the YAML and JSON files beside this one, which the compose
// stack and the Kubernetes overlay mount), and reads them for the tests: the
// PromQL expressions they contain and the metrics those select, so that a
// test can parse every expression and look for every metric in what a
// running foodpipe serves.
package monitoring

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

//go:embed alerts.yml
var alertsYAML []byte

//go:embed grafana/dashboards/foodpipe.json
var dashboardJSON []byte

// RuleFile is a Prometheus rule file, as rule_files loads it and as the
// Prometheus Operator's PrometheusRule holds it in its spec.
type RuleFile struct {
	Groups []RuleGroup `json:"groups"`
}

// RuleGroup is one group of rules, evaluated together.
type RuleGroup struct {
	Name  string `json:"name"`
	Rules []Rule `json:"rules"`
}

// Rule is one alerting rule.
type Rule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Alerts returns alerts.yml, decoded strictly: a misspelt field is an error
// here rather than a rule Prometheus silently reads differently.
func Alerts() (*RuleFile, error) {
	var f RuleFile
	if err := yaml.UnmarshalStrict(alertsYAML, &f); err != nil {
		return nil, fmt.Errorf("alerts.yml: %w", err)
	}
	return &f, nil
}

// Dashboard is the part of a Grafana dashboard model the checked-in
// dashboard uses. It is decoded with unknown fields refused, so the struct
// names every field the file has.
type Dashboard struct {
	UID           string                    `json:"uid"`
	Title         string                    `json:"title"`
	Description   string                    `json:"description"`
	Tags          []string                  `json:"tags"`
	Timezone      string                    `json:"timezone"`
	SchemaVersion int                       `json:"schemaVersion"`
	Version       int                       `json:"version"`
	Editable      bool                      `json:"editable"`
	Refresh       string                    `json:"refresh"`
	Time          struct{ From, To string } `json:"time"`
	Panels        []Panel                   `json:"panels"`
	Templating    struct {
		List []json.RawMessage `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []json.RawMessage `json:"list"`
	} `json:"annotations"`
}

// Datasource names a Grafana data source by type and uid.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Panel is one graph of the dashboard.
type Panel struct {
	ID          int        `json:"id"`
	Type        string     `json:"type"`
	Title       string     `json:"title"`
	Description string     `json:"description"`
	Datasource  Datasource `json:"datasource"`
	GridPos     struct {
		H, W, X, Y int
	} `json:"gridPos"`
	FieldConfig struct {
		Defaults struct {
			Unit       string `json:"unit"`
			Thresholds *struct {
				Mode  string            `json:"mode"`
				Steps []json.RawMessage `json:"steps"`
			} `json:"thresholds,omitempty"`
		} `json:"defaults"`
		Overrides []json.RawMessage `json:"overrides"`
	} `json:"fieldConfig"`
	Targets []Target `json:"targets"`
}

// Target is one PromQL query of a panel.
type Target struct {
	RefID        string     `json:"refId"`
	Datasource   Datasource `json:"datasource"`
	Expr         string     `json:"expr"`
	LegendFormat string     `json:"legendFormat"`
}

// LoadDashboard returns the dashboard, decoded strictly.
func LoadDashboard() (*Dashboard, error) {
	var d Dashboard
	dec := json.NewDecoder(bytes.NewReader(dashboardJSON))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("foodpipe.json: %w", err)
	}
	return &d, nil
}

// Query is one PromQL expression and where it comes from.
type Query struct {
	Where string // "alert X" or "panel \"T\" target R"
	Expr  string
}

// Queries returns every PromQL expression of the alerts and the dashboard.
func Queries() ([]Query, error) {
	f, err := Alerts()
	if err != nil {
		return nil, err
	}
	d, err := LoadDashboard()
	if err != nil {
		return nil, err
	}
	var qs []Query
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			qs = append(qs, Query{Where: "alert " + r.Alert, Expr: r.Expr})
		}
	}
	for _, p := range d.Panels {
		for _, t := range p.Targets {
			qs = append(qs, Query{Where: fmt.Sprintf("panel %q target %s", p.Title, t.RefID), Expr: t.Expr})
		}
	}
	return qs, nil
}

// Metrics parses expr with Prometheus's own PromQL parser and returns the
// names of the metrics it selects, sorted and each once.
func Metrics(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", expr, err)
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok && !slices.Contains(names, vs.Name) {
			names = append(names, vs.Name)
		}
		return nil
	})
	slices.Sort(names)
	return names, nil
}

// AllMetrics returns the metrics every query of the alerts and the dashboard
// selects, sorted and each once.
func AllMetrics() ([]string, error) {
	qs, err := Queries()
	if err != nil {
		return nil, err
	}
	var all []string
	for _, q := range qs {
		names, err := Metrics(q.Expr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", q.Where, err)
		}
		for _, n := range names {
			if !slices.Contains(all, n) {
				all = append(all, n)
			}
		}
	}
	slices.Sort(all)
	return all, nil
}
