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
	"os"
	"strings"
	"testing"
)

// shop reads the fixture snapshot (a compiled shop namespace: a RateLimit, a CircuitBreaker and a
// RetryPolicy on three Services) in its compact wire form.
func shop(tb testing.TB) []byte {
	tb.Helper()
	data, err := os.ReadFile("testdata/shop.json")
	if err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// decode decodes a whole snapshot with a fresh Decoder, as a gateway does on connecting.
func decode(data []byte) (*Encoded, error) {
	var d Decoder
	return d.Decode(data)
}

func TestDecodeRefusesBadSnapshots(t *testing.T) {
	good := string(shop(t))
	cases := []struct {
		desc    string
		data    string
		wantErr string
	}{
		{desc: "not JSON", data: "{", wantErr: "decode snapshot"},
		{desc: "unknown field", data: `{"version":1,"services":[],"policies":[],"extra":1}`, wantErr: "unknown field"},
		{desc: "trailing data", data: good + "{}", wantErr: "trailing data"},
		{desc: "bad duration", data: strings.Replace(good, `"period":"1s"`, `"period":"soon"`, 1), wantErr: "invalid duration"},
		{desc: "service without name", data: `{"version":2,"services":[{"namespace":"a","name":"","ports":[{"port":80,"endpoints":[]}]}],"policies":[]}`, wantErr: "namespace and name are required"},
		{desc: "endpoint not an IP", data: `{"version":2,"services":[{"namespace":"a","name":"b","ports":[{"port":80,"endpoints":[{"address":"x","port":1,"type":"IPv4"}]}]}],"policies":[]}`, wantErr: "is not an IPv4 address"},
		{desc: "zero burst", data: strings.Replace(good, `"burst":25`, `"burst":0`, 1), wantErr: "burst"},
		{desc: "bad status codes", data: strings.Replace(good, `"500-599"`, `"599-500"`, 1), wantErr: "failureStatusCodes"},
		{desc: "bad gRPC code name", data: strings.Replace(good, `"failureStatusCodes":`, `"failureGRPCCodes":["UNAVAILABLE"],"failureStatusCodes":`, 1), wantErr: "failureGRPCCodes"},
		{desc: "a policy key that is not kind/namespace/name", data: `{"version":1,"services":[],"policies":[{"kind":"Rate/Limit","namespace":"a","name":"b","uid":"u","generation":1}]}`, wantErr: "policies[0]"},
		{desc: "good", data: good},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := decode([]byte(tc.data))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// FuzzDecode feeds arbitrary bytes to the gateway's snapshot decoder: it must never panic, and what it
// accepts must validate and survive a round trip.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"version":1,"services":[],"policies":[]}`))
	f.Add([]byte(`{"version":2,"services":[{"namespace":"a","name":"b","ports":[{"port":80,"endpoints":[{"address":"fd00::1","port":1,"type":"IPv6"}]}]}],"policies":[]}`))
	f.Add(shop(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decode(data)
		if err != nil {
			return
		}
		out, err := json.Marshal(e.Snapshot)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := decode(out); err != nil {
			t.Fatalf("an accepted snapshot does not decode again: %v", err)
		}
	})
}

// A delta that does not decode strictly, or does not fit the snapshot held, is refused, and the
// decoder then asks for a whole snapshot; one whose result does not validate is refused but held.
func TestDecodeDeltaRefusesBadDeltas(t *testing.T) {
	base, err := decode(shop(t))
	if err != nil {
		t.Fatal(err)
	}
	body := shop(t)
	svc, _ := json.Marshal(base.Services[0])
	cases := []struct {
		desc, delta, wantErr string
		holds                bool
	}{
		{desc: "not JSON", delta: "{", wantErr: "decode delta"},
		{desc: "unknown field", delta: `{"extra":1}`, wantErr: "unknown field"},
		{desc: "unknown field in a service", delta: `{"services":[` + strings.Replace(string(svc), `"ports"`, `"x":1,"ports"`, 1) + `]}`, wantErr: "unknown field"},
		{desc: "trailing data", delta: `{}{}`, wantErr: "trailing data"},
		{desc: "removes what is not there", delta: `{"removed":["shop/nosuch"]}`, wantErr: "cannot remove"},
		{desc: "a service twice", delta: `{"services":[` + string(svc) + `,` + string(svc) + `]}`, wantErr: "listed twice"},
		{desc: "removes a policy not there", delta: `{"removedPolicies":["RateLimit/shop/nosuch"]}`, wantErr: "cannot remove policy"},
		{desc: "invalid service", delta: `{"services":[{"namespace":"a","name":"b","ports":[{"port":80,"endpoints":[{"address":"x","port":1,"type":"IPv4"}]}]}]}`,
			wantErr: "is not an IPv4 address", holds: true},
		{desc: "good", delta: `{"removed":["` + base.Services[0].Namespace + "/" + base.Services[0].Name + `"]}`, holds: true},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			var d Decoder
			if _, err := d.DecodeDelta([]byte(`{}`)); !errors.Is(err, ErrNoBase) {
				t.Fatalf("a delta without a base: %v", err)
			}
			if _, err := d.Decode(body); err != nil {
				t.Fatal(err)
			}
			_, err := d.DecodeDelta([]byte(tc.delta))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if d.Holds() != tc.holds {
				t.Fatalf("holds %v after the delta, want %v", d.Holds(), tc.holds)
			}
		})
	}
}

// FuzzDecodeDelta: arbitrary deltas never panic, and what is accepted validates and round-trips.
func FuzzDecodeDelta(f *testing.F) {
	body := shop(f)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"removed":["shop/checkout"],"removedPolicies":["RateLimit/shop/checkout"]}`))
	f.Add([]byte(`{"services":[{"namespace":"a","name":"b","ports":[{"port":80,"endpoints":[]}]}],"policies":[{"kind":"RateLimit","namespace":"a","name":"b","uid":"u","generation":1}]}`))
	f.Fuzz(func(t *testing.T, delta []byte) {
		var d Decoder
		if _, err := d.Decode(body); err != nil {
			t.Fatal(err)
		}
		e, err := d.DecodeDelta(delta)
		if err != nil {
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("an accepted delta gives an invalid snapshot: %v", err)
		}
		out, _ := e.Body()
		if _, err := decode(out); err != nil {
			t.Fatalf("an accepted delta's snapshot does not decode: %v", err)
		}
	})
}
