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

package clock

import (
	"testing"
	"time"
)

func TestFakeTimersFireAtTheirDeadline(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		desc    string
		after   time.Duration
		advance time.Duration
		fired   bool
	}{
		{desc: "not yet", after: time.Second, advance: time.Second - time.Nanosecond, fired: false},
		{desc: "exactly at the deadline", after: time.Second, advance: time.Second, fired: true},
		{desc: "past the deadline", after: time.Second, advance: time.Hour, fired: true},
		{desc: "zero fires at once", after: 0, advance: 0, fired: true},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			f := NewFake(t0)
			tm := f.NewTimer(tc.after)
			f.Advance(tc.advance)
			select {
			case at := <-tm.C():
				if !tc.fired {
					t.Fatalf("fired at %s", at)
				}
			default:
				if tc.fired {
					t.Fatal("did not fire")
				}
			}
		})
	}
}

func TestFakeStopAndPending(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	a, b := f.NewTimer(time.Second), f.NewTimer(2*time.Second)
	if f.Pending() != 2 {
		t.Fatalf("pending %d, want 2", f.Pending())
	}
	if !a.Stop() || a.Stop() {
		t.Fatal("Stop must report true once, then false")
	}
	f.Advance(2 * time.Second)
	if f.Pending() != 0 || b.Stop() {
		t.Fatal("b should have fired and be unstoppable")
	}
	select {
	case <-a.C():
		t.Fatal("a stopped timer fired")
	default:
	}
	f.Set(time.Unix(-5, 0)) // never backwards
	if !f.Now().Equal(time.Unix(2, 0)) {
		t.Fatalf("time went backwards to %s", f.Now())
	}
}
