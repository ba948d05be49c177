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

package gateway

import "io"

// limited returns body, cut at the body limit when it has one and its length is unknown (net/http's
// server holds a body with a Content-Length to that length); already is how much of it was read.
func (x *exchange) limited(body io.ReadCloser, already int64) io.ReadCloser {
	if x.bodyLimit <= 0 || x.in.ContentLength >= 0 {
		return body
	}
	return &limitedBody{rc: body, n: x.bodyLimit - already, hit: &x.bodyLimited}
}
