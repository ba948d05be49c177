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

package snapshot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Encoded is a snapshot together with the JSON encoding of each of its Services: Encodings[i] is
// json.Marshal(Services[i]). Whoever keeps work per Service (the manager's encoder, the gateway's
// routing table) tells an unchanged Service by its bytes, without encoding or comparing it again.
// An Encoded and its Snapshot are read-only once made: Services of consecutive snapshots share memory.
type Encoded struct {
	*Snapshot
	Encodings []string
}

// Encode encodes every Service of s.
func Encode(s *Snapshot) (*Encoded, error) {
	e := &Encoded{Snapshot: s, Encodings: make([]string, len(s.Services))}
	for i := range s.Services {
		b, err := json.Marshal(&s.Services[i])
		if err != nil {
			return nil, fmt.Errorf("encode service %s/%s: %w", s.Services[i].Namespace, s.Services[i].Name, err)
		}
		e.Encodings[i] = string(b)
	}
	return e, nil
}

// SameContent reports whether e and o hold the same Services and policies (versions aside).
func (e *Encoded) SameContent(o *Encoded) bool {
	return o != nil && slices.Equal(e.Encodings, o.Encodings) && slices.Equal(e.Policies, o.Policies)
}

// Body is the snapshot's JSON with version 0: exactly json.Marshal of the Snapshot with Version 0,
// assembled from the Services' encodings.
func (e *Encoded) Body() ([]byte, error) {
	policies, err := json.Marshal(e.Policies)
	if err != nil {
		return nil, fmt.Errorf("encode policies: %w", err)
	}
	n := len(`{"version":0,"services":[],"policies":}`) + len(policies) + len(e.Encodings)
	for _, s := range e.Encodings {
		n += len(s)
	}
	b := make([]byte, 0, n)
	b = append(b, `{"version":0,"services":`...)
	if e.Services == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, s := range e.Encodings {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, s...)
		}
		b = append(b, ']')
	}
	b = append(b, `,"policies":`...)
	b = append(b, policies...)
	return append(b, '}'), nil
}

// Delta is the difference between two snapshots, as the manager sends it to a gateway that holds the
// first: the Services added or changed (whole), the Services gone, and the same for the policies in
// force. Applied to the first snapshot it gives the second exactly (Decoder.DecodeDelta).
type Delta struct {
	// Services are the Services added or changed, each whole, sorted by namespace and name.
	Services []json.RawMessage `json:"services,omitempty"`
	// Removed names the Services gone, as namespace/name.
	Removed []string `json:"removed,omitempty"`
	// Policies are the policies added to the list in force or changed (a new generation).
	Policies []PolicyRef `json:"policies,omitempty"`
	// RemovedPolicies are the keys of the policies no longer in force.
	RemovedPolicies []PolicyKey `json:"removedPolicies,omitempty"`
}

// Diff encodes the delta that turns from into to; it is empty when their content is the same.
func Diff(from, to *Encoded) ([]byte, error) {
	var d Delta
	old := make(map[serviceKey]string, len(from.Services))
	for i := range from.Services {
		old[serviceKey{from.Services[i].Namespace, from.Services[i].Name}] = from.Encodings[i]
	}
	for i := range to.Services {
		k := serviceKey{to.Services[i].Namespace, to.Services[i].Name}
		if enc, ok := old[k]; !ok || enc != to.Encodings[i] {
			d.Services = append(d.Services, json.RawMessage(to.Encodings[i]))
		}
		delete(old, k)
	}
	for k := range old {
		d.Removed = append(d.Removed, k.namespace+"/"+k.name)
	}
	slices.Sort(d.Removed)
	oldPolicies := make(map[PolicyKey]PolicyRef, len(from.Policies))
	for _, p := range from.Policies {
		oldPolicies[p.Key()] = p
	}
	for _, p := range to.Policies {
		k := p.Key()
		if o, ok := oldPolicies[k]; !ok || o != p {
			d.Policies = append(d.Policies, p)
		}
		delete(oldPolicies, k)
	}
	for k := range oldPolicies {
		d.RemovedPolicies = append(d.RemovedPolicies, k)
	}
	slices.SortFunc(d.RemovedPolicies, PolicyKey.Compare)
	return json.Marshal(&d)
}

// Decoder decodes a gateway's stream of snapshots, whole or as deltas against the one before,
// strictly (unknown fields refused) and validates each. It keeps the last snapshot it was sent (valid
// or not: deltas build on what the manager sent), and decodes and validates again only the Services
// whose bytes changed. The zero value is ready; it holds no snapshot until the first whole one.
type Decoder struct {
	ok       bool // a snapshot is held: deltas can apply
	services map[serviceKey]*decodedService
	order    []serviceKey // sorted as the manager sorts them
	policies []PolicyRef
}

type decodedService struct {
	enc   string
	svc   Service
	valid bool // the content passed validation
}

// Holds reports whether the decoder holds a snapshot that deltas can apply to.
func (d *Decoder) Holds() bool { return d.ok }

// Reset forgets the snapshot held: the next delta is refused until a whole snapshot arrives.
func (d *Decoder) Reset() { *d = Decoder{} }

// Decode parses a snapshot from JSON strictly (unknown fields refused) and validates it.
func Decode(data []byte) (*Snapshot, error) {
	var d Decoder
	e, err := d.Decode(data)
	if err != nil {
		return nil, err
	}
	return e.Snapshot, nil
}

// wholeSnapshot is the wire form of a Snapshot, with each Service left raw.
type wholeSnapshot struct {
	Version  uint64            `json:"version"`
	Services []json.RawMessage `json:"services"`
	Policies []PolicyRef       `json:"policies"`
}

func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// Decode decodes a whole snapshot (as Decode does) and holds it for the deltas that follow. A
// snapshot that does not decode leaves the decoder holding none.
func (d *Decoder) Decode(data []byte) (*Encoded, error) {
	prev := make(map[string]*decodedService, len(d.services))
	for _, ds := range d.services {
		prev[ds.enc] = ds
	}
	d.Reset()
	var w wholeSnapshot
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decode snapshot: trailing data")
	}
	snap := &Snapshot{Version: w.Version, Policies: w.Policies}
	if w.Services != nil {
		snap.Services = make([]Service, len(w.Services))
	}
	e := &Encoded{Snapshot: snap, Encodings: make([]string, len(w.Services))}
	entries := make([]*decodedService, len(w.Services))
	for i, raw := range w.Services {
		ds, err := decodeService(prev, raw)
		if err != nil {
			return nil, fmt.Errorf("decode snapshot: services[%d]: %w", i, err)
		}
		entries[i], snap.Services[i], e.Encodings[i] = ds, ds.svc, ds.enc
	}
	err := validate(e, entries)
	// Hold it for deltas unless a Service is listed twice (a delta could not say which one it changes).
	services := make(map[serviceKey]*decodedService, len(entries))
	order := make([]serviceKey, 0, len(entries))
	for i, ds := range entries {
		k := serviceKey{snap.Services[i].Namespace, snap.Services[i].Name}
		if services[k] != nil {
			return nil, err
		}
		services[k] = ds
		order = append(order, k)
	}
	d.ok, d.services, d.order, d.policies = true, services, order, slices.Clone(snap.Policies)
	if err != nil {
		return nil, err
	}
	return e, nil
}

// decodeService decodes one Service strictly, or takes it from prev when its bytes are unchanged.
func decodeService(prev map[string]*decodedService, raw []byte) (*decodedService, error) {
	if p := prev[string(raw)]; p != nil {
		return p, nil
	}
	ds := &decodedService{enc: string(raw)}
	if err := strictUnmarshal(raw, &ds.svc); err != nil {
		return nil, err
	}
	return ds, nil
}

// validate validates e, checking again only the Services not yet known valid, and records which are.
func validate(e *Encoded, entries []*decodedService) error {
	var errs []error
	seen := make(map[serviceKey]bool, len(e.Services))
	for i := range e.Services {
		svc := &e.Services[i]
		k := serviceKey{svc.Namespace, svc.Name}
		if seen[k] {
			errs = append(errs, fmt.Errorf("%s: listed twice", serviceWhere(i, svc)))
		}
		seen[k] = true
		if ds := entries[i]; !ds.valid {
			more := validateService(i, svc)
			ds.valid = len(more) == 0
			errs = append(errs, more...)
		}
	}
	errs = append(errs, validatePolicies(e.Policies)...)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid snapshot version %d: %w", e.Version, err)
	}
	return nil
}

// ErrNoBase is returned by DecodeDelta when the decoder holds no snapshot to apply the delta to: the
// gateway needs the whole snapshot.
var ErrNoBase = errors.New("decode delta: no snapshot to apply it to; the whole snapshot is needed")

// DecodeDelta applies a delta (see Delta) to the snapshot held, strictly, and validates the result,
// decoding and validating only the Services the delta carries. A delta that does not decode, or does
// not fit the snapshot held (a Service listed twice, a removal of what is not there), leaves the
// decoder holding none; a result that does not validate is held all the same (the next delta builds
// on it) and returned as an error.
func (d *Decoder) DecodeDelta(data []byte) (*Encoded, error) {
	if !d.ok {
		return nil, ErrNoBase
	}
	e, err := d.applyDelta(data)
	if err != nil && e == nil {
		d.Reset()
	}
	return e, err
}

func (d *Decoder) applyDelta(data []byte) (*Encoded, error) {
	var delta Delta
	if err := strictUnmarshal(data, &delta); err != nil {
		return nil, fmt.Errorf("decode delta: %w", err)
	}
	changed := make(map[serviceKey]*decodedService, len(delta.Services))
	added := false
	for i, raw := range delta.Services {
		ds := &decodedService{enc: string(raw)}
		if err := strictUnmarshal(raw, &ds.svc); err != nil {
			return nil, fmt.Errorf("decode delta: services[%d]: %w", i, err)
		}
		k := serviceKey{ds.svc.Namespace, ds.svc.Name}
		if changed[k] != nil {
			return nil, fmt.Errorf("decode delta: services[%d]: %s/%s listed twice", i, k.namespace, k.name)
		}
		if p := d.services[k]; p != nil && p.enc == ds.enc {
			ds = p
		} else if p == nil {
			added = true
		}
		changed[k] = ds
	}
	removed := make(map[serviceKey]bool, len(delta.Removed))
	for _, r := range delta.Removed {
		ns, name, _ := strings.Cut(r, "/")
		k := serviceKey{ns, name}
		if d.services[k] == nil || changed[k] != nil || removed[k] {
			return nil, fmt.Errorf("decode delta: cannot remove service %q", r)
		}
		removed[k] = true
	}
	policies, err := patchPolicies(d.policies, delta.Policies, delta.RemovedPolicies)
	if err != nil {
		return nil, err
	}

	// The delta fits: hold the new snapshot.
	for k := range removed {
		delete(d.services, k)
	}
	for k, ds := range changed {
		d.services[k] = ds
	}
	if added || len(removed) > 0 {
		order := make([]serviceKey, 0, len(d.services))
		for k := range d.services {
			order = append(order, k)
		}
		slices.SortFunc(order, func(a, b serviceKey) int {
			if c := strings.Compare(a.namespace, b.namespace); c != 0 {
				return c
			}
			return strings.Compare(a.name, b.name)
		})
		d.order = order
	}
	d.policies = policies

	snap := &Snapshot{Services: make([]Service, len(d.order)), Policies: slices.Clone(policies)}
	e := &Encoded{Snapshot: snap, Encodings: make([]string, len(d.order))}
	entries := make([]*decodedService, len(d.order))
	for i, k := range d.order {
		ds := d.services[k]
		entries[i], snap.Services[i], e.Encodings[i] = ds, ds.svc, ds.enc
	}
	return e, validate(e, entries)
}

// patchPolicies applies the policy part of a delta to a sorted list, keeping it sorted by key.
func patchPolicies(list, upsert []PolicyRef, remove []PolicyKey) ([]PolicyRef, error) {
	index := make(map[PolicyKey]int, len(list))
	for i, p := range list {
		index[p.Key()] = i
	}
	out := slices.Clone(list)
	gone := make(map[PolicyKey]bool, len(remove))
	for _, k := range remove {
		if _, ok := index[k]; !ok || gone[k] {
			return nil, fmt.Errorf("decode delta: cannot remove policy %q", k)
		}
		gone[k] = true
	}
	resort := len(remove) > 0
	seen := make(map[PolicyKey]bool, len(upsert))
	for _, p := range upsert {
		k := p.Key()
		if seen[k] || gone[k] {
			return nil, fmt.Errorf("decode delta: policy %q listed twice", k)
		}
		seen[k] = true
		if i, ok := index[k]; ok {
			out[i] = p
			continue
		}
		out = append(out, p)
		resort = true
	}
	if resort {
		out = slices.DeleteFunc(out, func(p PolicyRef) bool { return gone[p.Key()] })
		slices.SortFunc(out, func(a, b PolicyRef) int { return a.Key().Compare(b.Key()) })
	}
	return out, nil
}
