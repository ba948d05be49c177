/*
Copyright 2026 The resilience operator authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package observe

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// exposed is what /metrics showed: series name -> label name -> the values seen. A histogram gives
// its _bucket (with le), _sum and _count series, as Prometheus stores them.
type exposed map[string]map[string]map[string]bool

// scrapeLabels are the labels the Prometheus Operator adds to every series of a target (the scraped
// pod's, not the binary's): a legend may show them, a query may not group or filter on them as if
// the binaries exposed them.
var scrapeLabels = []string{"job", "instance", "namespace", "service", "endpoint", "pod", "container"}

// scrape reads url (a /metrics endpoint) into ex with the Prometheus text parser.
func scrape(url string, ex exposed) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return fmt.Errorf("parse %s: %w", url, err)
	}
	for name, mf := range families {
		for _, m := range mf.GetMetric() {
			if mf.GetType() == dto.MetricType_HISTOGRAM {
				ex.add(name+"_sum", m.GetLabel())
				ex.add(name+"_count", m.GetLabel())
				for _, b := range m.GetHistogram().GetBucket() {
					ex.add(name+"_bucket", m.GetLabel(), "le", model.FloatString(b.GetUpperBound()).String())
				}
				continue
			}
			ex.add(name, m.GetLabel())
		}
	}
	return nil
}

func (ex exposed) add(name string, lps []*dto.LabelPair, extra ...string) {
	ls := ex[name]
	if ls == nil {
		ls = map[string]map[string]bool{}
		ex[name] = ls
	}
	set := func(k, v string) {
		if ls[k] == nil {
			ls[k] = map[string]bool{}
		}
		ls[k][v] = true
	}
	for _, lp := range lps {
		set(lp.GetName(), lp.GetValue())
	}
	for i := 0; i+1 < len(extra); i += 2 {
		set(extra[i], extra[i+1])
	}
}

// query is one PromQL expression of the dashboard, where it is, and the legend it is shown with.
type query struct {
	where, expr, legend string
	labelValues         string // set for a label_values(selector, label) variable: the label
}

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr         string `json:"expr"`
			LegendFormat string `json:"legendFormat"`
		} `json:"targets"`
		Panels json.RawMessage `json:"panels"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

var labelValuesRE = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)

// readDashboard returns every query of the dashboard at path: panel targets and query variables.
func readDashboard(path string) ([]query, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var qs []query
	for _, p := range d.Panels {
		if len(p.Panels) > 0 && string(p.Panels) != "[]" {
			return nil, fmt.Errorf("panel %q: collapsed rows with nested panels are not checked; keep rows expanded", p.Title)
		}
		for i, t := range p.Targets {
			qs = append(qs, query{where: fmt.Sprintf("panel %q target %d", p.Title, i), expr: t.Expr, legend: t.LegendFormat})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			return nil, fmt.Errorf("variable %s: %w", v.Name, err)
		}
		m := labelValuesRE.FindStringSubmatch(q.Query)
		if m == nil {
			return nil, fmt.Errorf("variable %s: %q is not label_values(selector, label)", v.Name, q.Query)
		}
		qs = append(qs, query{where: "variable " + v.Name, expr: m[1], labelValues: m[2]})
	}
	return qs, nil
}

// variables are the dashboard's template variables and what the test puts in their place.
var variables = strings.NewReplacer("$__rate_interval", "5m", "${namespace}", ".*", "$namespace", ".*",
	"${service}", ".*", "$service", ".*")

var legendRE = regexp.MustCompile(`\{\{\s*([^}\s]*)\s*\}\}`)

// check returns what is wrong with q given what the binaries expose: a parse error, a metric no
// binary exposes, a label matcher, grouping or legend naming a label the series do not carry, or an
// equality matcher with a value never seen.
func check(q query, ex exposed) []string {
	expr := variables.Replace(q.expr)
	if strings.Contains(expr, "$") {
		return []string{fmt.Sprintf("%s: unknown template variable in %q", q.where, q.expr)}
	}
	root, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return []string{fmt.Sprintf("%s: %q does not parse: %v", q.where, q.expr, err)}
	}
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, q.where+": "+fmt.Sprintf(format, args...))
	}
	parser.Inspect(root, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			checkSelector(n, ex, bad)
		case *parser.AggregateExpr:
			checkLabels("grouping of "+n.Op.String(), n.Grouping, outLabels(n.Expr, ex, false), bad)
		case *parser.BinaryExpr:
			if n.VectorMatching != nil {
				have := union(outLabels(n.LHS, ex, false), outLabels(n.RHS, ex, false))
				checkLabels("vector matching", n.VectorMatching.MatchingLabels, have, bad)
				checkLabels("group modifier", n.VectorMatching.Include, have, bad)
			}
		}
		return nil
	})
	out := outLabels(root, ex, true)
	for _, m := range legendRE.FindAllStringSubmatch(q.legend, -1) {
		if !out[m[1]] {
			bad("legend {{%s}} names a label the result does not have (it has %s)", m[1], keys(out))
		}
	}
	if own := outLabels(root, ex, false); q.labelValues != "" && !own[q.labelValues] {
		bad("label_values of %s: the series have no label %s (they have %s)", expr, q.labelValues, keys(own))
	}
	return problems
}

func checkSelector(vs *parser.VectorSelector, ex exposed, bad func(string, ...any)) {
	series, ok := ex[vs.Name]
	if !ok {
		bad("metric %s is not exposed by the manager or the gateway", vs.Name)
		return
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == labels.MetricName {
			continue
		}
		values, ok := series[m.Name]
		if !ok {
			bad("%s has no label %s (it has %s)", vs.Name, m.Name, keys(labelSet(series)))
			continue
		}
		if m.Type == labels.MatchEqual && m.Value != "" && !values[m.Value] {
			bad("%s{%s}: no series has that value (seen: %s)", vs.Name, m, keys(values))
		}
		if m.Type == labels.MatchRegexp && !slices.ContainsFunc(keysOf(values), m.Matches) {
			bad("%s{%s}: no series matches (seen: %s)", vs.Name, m, keys(values))
		}
	}
}

func checkLabels(what string, names []string, have map[string]bool, bad func(string, ...any)) {
	for _, l := range names {
		if !have[l] {
			bad("%s names label %s, which its series do not have (they have %s)", what, l, keys(have))
		}
	}
}
