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

package globalstore

import (
	"fmt"
	"time"

	"resilience.dev/operator/internal/patterns/globallimit"
)

// parseReply checks the script's answer before anything trusts it: a store that answers something
// else (another program on the port, a script of another version) is a failed store, never tokens
// that were not granted.
func parseReply(reply []int64, r globallimit.Rate, want int64) (globallimit.Grant, error) {
	if len(reply) != 3 {
		return globallimit.Grant{}, fmt.Errorf("store reply: %d values, want 3", len(reply))
	}
	granted, remaining, retry := reply[0], reply[1], reply[2]
	switch {
	case granted < 0 || granted > max(want, 0):
		return globallimit.Grant{}, fmt.Errorf("store reply: granted %d of %d asked", granted, want)
	case remaining < 0 || remaining > r.Burst:
		return globallimit.Grant{}, fmt.Errorf("store reply: remaining %d outside [0, %d]", remaining, r.Burst)
	case retry < 0 || retry > r.Burst*r.PeriodMicros/r.Requests+1:
		return globallimit.Grant{}, fmt.Errorf("store reply: retry after %dµs beyond a full refill", retry)
	}
	return globallimit.Grant{Granted: granted, Remaining: remaining, RetryAfter: time.Duration(retry) * time.Microsecond}, nil
}
