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

package capture

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

var epoch = time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)

// svc is a Service in namespace shop created age seconds after epoch, with the given ports.
func svc(name string, age int, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", UID: types.UID("uid-" + name),
		CreationTimestamp: metav1.NewTime(epoch.Add(time.Duration(age) * time.Second))},
		Spec: corev1.ServiceSpec{Ports: ports, ClusterIP: "10.96.0.10"}}
}

func port(name string, p int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: p, Protocol: corev1.ProtocolTCP}
}

// front makes svc a front of backend.
func front(s *corev1.Service, backend string) *corev1.Service {
	s.Labels = map[string]string{LabelCapture: ValueGateway}
	s.Annotations = map[string]string{AnnotationBackend: backend}
	return s
}

func lookupOf(services ...*corev1.Service) Lookup {
	m := map[string]*corev1.Service{}
	for _, s := range services {
		m[s.Namespace+"/"+s.Name] = s
	}
	return func(ns, name string) *corev1.Service { return m[ns+"/"+name] }
}

func TestPlanRefusals(t *testing.T) {
	backend := svc("checkout-pods", 0, port("http", 8080))
	ext := svc("ext", 0, port("http", 80))
	ext.Spec.Type = corev1.ServiceTypeExternalName
	other := front(svc("other", 0, port("http", 80)), "checkout-pods")
	cases := []struct {
		name   string
		mutate func(f *corev1.Service)
		want   string // substring of the refusal; "" for captured
	}{
		{"captured", func(*corev1.Service) {}, ""},
		{"unknown label value", func(f *corev1.Service) { f.Labels[LabelCapture] = "sidecar" }, `unknown value "sidecar"`},
		{"unknown failure value", func(f *corev1.Service) { f.Annotations[AnnotationFailure] = "closed" }, `unknown value "closed" (Open or Closed)`},
		{"closed is fine", func(f *corev1.Service) { f.Annotations[AnnotationFailure] = FailureClosed }, ""},
		{"no backend annotation", func(f *corev1.Service) { delete(f.Annotations, AnnotationBackend) }, "is missing"},
		{"backend in another namespace", func(f *corev1.Service) { f.Annotations[AnnotationBackend] = "pay/checkout" }, "front's own namespace"},
		{"backend not a name", func(f *corev1.Service) { f.Annotations[AnnotationBackend] = "Check_Out" }, "not a Service name"},
		{"backend is the front", func(f *corev1.Service) { f.Annotations[AnnotationBackend] = "checkout" }, "names the front itself"},
		{"missing backend", func(f *corev1.Service) { f.Annotations[AnnotationBackend] = "gone" }, "shop/gone not found"},
		{"backend ExternalName", func(f *corev1.Service) { f.Annotations[AnnotationBackend] = "ext" }, "ExternalName"},
		{"backend is a front", func(f *corev1.Service) { f.Annotations[AnnotationBackend] = "other" }, "fronts do not chain"},
		{"headless front", func(f *corev1.Service) { f.Spec.ClusterIP = corev1.ClusterIPNone }, "headless"},
		{"ExternalName front", func(f *corev1.Service) { f.Spec.Type = corev1.ServiceTypeExternalName }, "ExternalName"},
		{"UDP port", func(f *corev1.Service) { f.Spec.Ports[0].Protocol = corev1.ProtocolUDP }, "only TCP"},
		{"unpaired port", func(f *corev1.Service) { f.Spec.Ports = append(f.Spec.Ports, port("grpc", 9090)) }, `front port "grpc" (9090) has no backend port`},
		{"no ports", func(f *corev1.Service) { f.Spec.Ports = nil }, "no ports"},
		{"101 ports", func(f *corev1.Service) {
			for i := range 100 {
				f.Spec.Ports = append(f.Spec.Ports, port(fmt.Sprint("p", i), int32(1000+i)))
			}
		}, "at most 100"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := front(svc("checkout", 1, port("http", 80)), "checkout-pods")
			c.mutate(f)
			plans := PlanAll([]*corev1.Service{f}, lookupOf(backend, ext, other, f), nil, DefaultRange)
			got := plans[0].Refused
			if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
				t.Fatalf("refusal %q, want %q", got, c.want)
			}
			if got != "" && len(plans[0].Ports) != 0 {
				t.Fatalf("a refused front holds ports: %+v", plans[0].Ports)
			}
		})
	}
}

func TestPlanPairsPorts(t *testing.T) {
	backend := svc("pods", 0, port("grpc", 9000), port("http", 8080))
	f := front(svc("api", 1, port("http", 80), port("grpc", 9090)), "pods")
	p := PlanAll([]*corev1.Service{f}, lookupOf(backend), nil, DefaultRange)[0]
	want := []PortMap{{Name: "http", Port: 80, BackendName: "http", BackendPort: 8080, Capture: 20000},
		{Name: "grpc", Port: 9090, BackendName: "grpc", BackendPort: 9000, Capture: 20001}}
	if fmt.Sprint(p.Ports) != fmt.Sprint(want) {
		t.Fatalf("ports %+v, want %+v", p.Ports, want)
	}
	// One port each: paired whatever the names.
	single := front(svc("one", 1, port("", 80)), "pods1")
	p = PlanAll([]*corev1.Service{single}, lookupOf(svc("pods1", 0, port("web", 8080))), nil, DefaultRange)[0]
	if !p.Captured() || p.Ports[0].BackendName != "web" {
		t.Fatalf("single ports not paired: %+v %q", p.Ports, p.Refused)
	}
}

// TestPlanAllocation: claims kept oldest first, collisions to the older front, fresh ports lowest
// first in age order, an exhausted range refusing a front whole and freeing what it held.
func TestPlanAllocation(t *testing.T) {
	pods := svc("pods", 0, port("http", 8080), port("admin", 8081), port("metrics", 9090))
	mk := func(name string, age int, ports ...corev1.ServicePort) *corev1.Service {
		return front(svc(name, age, ports...), "pods")
	}
	key := func(n string) types.NamespacedName { return types.NamespacedName{Namespace: "shop", Name: n} }
	cases := []struct {
		name   string
		fronts []*corev1.Service
		claims Claims
		r      Range
		want   string // name:port=capture ... or name:refused
	}{
		{"fresh, oldest first", []*corev1.Service{mk("b", 2, port("http", 80)), mk("a", 1, port("http", 80))}, nil,
			DefaultRange, "a:http=20000 b:http=20001"},
		{"same age: by name", []*corev1.Service{mk("b", 1, port("http", 80)), mk("a", 1, port("http", 80))}, nil,
			DefaultRange, "a:http=20000 b:http=20001"},
		{"claims kept", []*corev1.Service{mk("a", 1, port("http", 80)), mk("b", 2, port("http", 80))},
			Claims{key("a"): {"http": 20007}, key("b"): {"http": 20003}}, DefaultRange, "a:http=20007 b:http=20003"},
		{"collision to the older", []*corev1.Service{mk("new", 5, port("http", 80)), mk("old", 1, port("http", 80))},
			Claims{key("old"): {"http": 20005}, key("new"): {"http": 20005}}, DefaultRange, "old:http=20005 new:http=20000"},
		{"claim outside the range", []*corev1.Service{mk("a", 1, port("http", 80))},
			Claims{key("a"): {"http": 8080}}, DefaultRange, "a:http=20000"},
		{"range of one port", []*corev1.Service{mk("a", 1, port("http", 80)), mk("b", 2, port("http", 80))}, nil,
			Range{First: 20000, Last: 20000}, "a:http=20000 b:refused"},
		{"refused whole, frees its claim", []*corev1.Service{mk("a", 1, port("http", 80), port("admin", 81), port("metrics", 82)), mk("b", 2, port("http", 80))},
			Claims{key("a"): {"http": 30001}}, Range{First: 30000, Last: 30001}, "a:refused b:http=30000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, p := range PlanAll(c.fronts, lookupOf(pods), c.claims, c.r) {
				if !p.Captured() {
					got = append(got, p.Front.Name+":refused")
					continue
				}
				for _, pm := range p.Ports {
					got = append(got, fmt.Sprintf("%s:%s=%d", p.Front.Name, pm.Name, pm.Capture))
				}
			}
			if strings.Join(got, " ") != c.want {
				t.Fatalf("got %q, want %q", strings.Join(got, " "), c.want)
			}
		})
	}
}

// TestPlanHundredPorts: a front with the most ports an EndpointSlice holds is captured, each port
// on its own capture port.
func TestPlanHundredPorts(t *testing.T) {
	var ports []corev1.ServicePort
	for i := range MaxPorts {
		ports = append(ports, port(fmt.Sprint("p", i), int32(1000+i)))
	}
	p := PlanAll([]*corev1.Service{front(svc("wide", 1, ports...), "pods")}, lookupOf(svc("pods", 0, ports...)), nil, DefaultRange)[0]
	if !p.Captured() || len(p.Ports) != MaxPorts || p.Ports[99].Capture != 20099 {
		t.Fatalf("refused %q, %d ports", p.Refused, len(p.Ports))
	}
}

func TestParseRange(t *testing.T) {
	for in, want := range map[string]string{"20000-29999": "20000-29999", "20000": "20000-20000", " 1 - 65535 ": "1-65535",
		"0-10": "error", "10-1": "error", "1-65536": "error", "a-b": "error", "": "error"} {
		r, err := ParseRange(in)
		got := r.String()
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("ParseRange(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestClaimsRoundTrip(t *testing.T) {
	p := PlanAll([]*corev1.Service{front(svc("a", 1, port("http", 80), port("", 81)), "pods")},
		lookupOf(svc("pods", 0, port("http", 8080), port("", 8081))), nil, DefaultRange)[0]
	if !p.Captured() {
		t.Fatal(p.Refused)
	}
	slices, _ := Desired(p, nil, nil)
	got := ClaimsOf(ptrs(slices))
	want := Claims{p.Front: {"http": 20000, "": 20001}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("claims %v, want %v", got, want)
	}
	slices[0].Annotations[AnnotationPorts] = "{not json"
	if got := ClaimsOf(ptrs(slices)); len(got) != 0 {
		t.Fatalf("a bad annotation gave claims %v", got)
	}
}
