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
	"slices"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"
)

// outLabels are the labels the result of n carries, as far as the test can tell from what the
// binaries expose; with scraped, a selector's result also carries the labels scraping adds.
func outLabels(n parser.Expr, ex exposed, scraped bool) map[string]bool {
	switch n := n.(type) {
	case *parser.VectorSelector:
		out := labelSet(ex[n.Name])
		delete(out, "__name__")
		if scraped {
			for _, l := range scrapeLabels {
				out[l] = true
			}
		}
		return out
	case *parser.MatrixSelector:
		return outLabels(n.VectorSelector, ex, scraped)
	case *parser.ParenExpr:
		return outLabels(n.Expr, ex, scraped)
	case *parser.SubqueryExpr:
		return outLabels(n.Expr, ex, scraped)
	case *parser.AggregateExpr:
		return aggregateLabels(n, ex, scraped)
	case *parser.Call:
		return callLabels(n, ex, scraped)
	case *parser.BinaryExpr:
		return binaryLabels(n, ex, scraped)
	}
	return map[string]bool{} // a number or a string
}

func aggregateLabels(n *parser.AggregateExpr, ex exposed, scraped bool) map[string]bool {
	in := outLabels(n.Expr, ex, scraped)
	if n.Op == parser.TOPK || n.Op == parser.BOTTOMK || n.Op == parser.LIMITK || n.Op == parser.LIMIT_RATIO {
		return in // keep the series as they are
	}
	out := map[string]bool{}
	if n.Without {
		for l := range in {
			if !slices.Contains(n.Grouping, l) {
				out[l] = true
			}
		}
	} else {
		for _, l := range n.Grouping {
			out[l] = in[l]
		}
	}
	if n.Op == parser.COUNT_VALUES {
		if s, ok := n.Param.(*parser.StringLiteral); ok {
			out[s.Val] = true
		}
	}
	return out
}

func callLabels(n *parser.Call, ex exposed, scraped bool) map[string]bool {
	var arg parser.Expr
	for _, a := range n.Args {
		if a.Type() == parser.ValueTypeVector || a.Type() == parser.ValueTypeMatrix {
			arg = a
			break
		}
	}
	if arg == nil {
		return map[string]bool{}
	}
	out := outLabels(arg, ex, scraped)
	if n.Func.Name == "histogram_quantile" {
		delete(out, "le")
	}
	return out
}

func binaryLabels(n *parser.BinaryExpr, ex exposed, scraped bool) map[string]bool {
	lt, rt := n.LHS.Type(), n.RHS.Type()
	switch {
	case lt != parser.ValueTypeVector:
		return outLabels(n.RHS, ex, scraped)
	case rt != parser.ValueTypeVector:
		return outLabels(n.LHS, ex, scraped)
	}
	out := outLabels(n.LHS, ex, scraped)
	vm := n.VectorMatching
	if vm == nil {
		return out
	}
	if vm.Card == parser.CardOneToOne && vm.On && !n.Op.IsComparisonOperator() {
		kept := map[string]bool{}
		for _, l := range vm.MatchingLabels {
			kept[l] = out[l]
		}
		out = kept
	}
	for _, l := range vm.Include {
		out[l] = true
	}
	return out
}

// labelSet is the set of label names of one series name.
func labelSet(series map[string]map[string]bool) map[string]bool {
	out := map[string]bool{}
	for l := range series {
		out[l] = true
	}
	return out
}

func union(a, b map[string]bool) map[string]bool {
	out := map[string]bool{}
	for l := range a {
		out[l] = true
	}
	for l := range b {
		out[l] = true
	}
	return out
}

func keysOf(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k, ok := range m {
		if ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func keys(m map[string]bool) string { return "[" + strings.Join(keysOf(m), " ") + "]" }
