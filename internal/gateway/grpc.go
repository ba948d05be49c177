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

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"resilience.dev/operator/internal/snapshot"
)

// gRPC over the gateway (contract section 6). A gRPC request (content-type application/grpc*, not
// gRPC-Web, which is plain HTTP/1.1-compatible framing) is carried like any other, with these
// differences:
//   - the gateway's own refusals are trailers-only gRPC responses (HTTP 200 with grpc-status and
//     grpc-message in the header block), whose codes follow grpcCodeOf;
//   - a port whose appProtocol is not grpc or kubernetes.io/h2c cannot carry it: Unimplemented;
//   - the request's grpc-timeout shortens the overall deadline;
//   - its body is streamed as it comes, the first MaxReplayBody bytes recorded for retries
//     (recordBody), and never hedged;
//   - retries and the breaker read grpc-status: of a trailers-only response for retries (before
//     anything reached the client), of the trailers at the end of the stream for the breaker.

// gRPC status codes (google.golang.org/grpc/codes), by the names codes.Code's String prints.
const (
	grpcUnknown           = 2
	grpcDeadlineExceeded  = 4
	grpcPermissionDenied  = 7
	grpcResourceExhausted = 8
	grpcUnimplemented     = 12
	grpcInternal          = 13
	grpcUnavailable       = 14
	grpcNumCodes          = len(snapshot.GRPCCodeNames)
	grpcContentType       = "application/grpc"
)

// grpcCodeSet is a set of gRPC status codes.
type grpcCodeSet uint32

// parseGRPCCodes reads code names (snapshot.GRPCCodeNames).
func parseGRPCCodes(names []string) (grpcCodeSet, error) {
	var s grpcCodeSet
	for _, n := range names {
		i, err := snapshot.GRPCCode(n)
		if err != nil {
			return 0, err
		}
		s |= 1 << i
	}
	return s, nil
}

func (s grpcCodeSet) has(code int) bool { return code >= 0 && code < grpcNumCodes && s&(1<<code) != 0 }

// isGRPC reports whether r is a gRPC request (not gRPC-Web).
func isGRPC(r *http.Request) bool {
	ct := r.Header["Content-Type"]
	if len(ct) == 0 || !strings.HasPrefix(ct[0], grpcContentType) {
		return false
	}
	rest := ct[0][len(grpcContentType):]
	return rest == "" || rest[0] == '+' || rest[0] == ';'
}

// grpcStatus reads a grpc-status field of h (a response header or trailer); ok is false without one.
func grpcStatus(h http.Header) (code int, ok bool) {
	v := h["Grpc-Status"]
	if len(v) == 0 {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(v[0]))
	if err != nil || n < 0 {
		return grpcUnknown, true
	}
	return n, true
}

// finalGRPCStatus is the grpc-status of a response written whole: of its trailers, or of its header
// block (trailers-only); -1 without one.
func finalGRPCStatus(resp *http.Response) int {
	if code, ok := grpcStatus(resp.Trailer); ok {
		return code
	}
	if code, ok := grpcStatus(resp.Header); ok {
		return code
	}
	return -1
}

// grpcCodeOf maps the gateway's own error (with the HTTP status it would have had) to a gRPC code.
func grpcCodeOf(ge *gwError, status int) int {
	switch {
	case ge.kind == kindTimeout, ge.kind == kindTryTimeout, status == http.StatusGatewayTimeout:
		return grpcDeadlineExceeded
	case ge.circuit != "":
		return grpcUnavailable // an open breaker or a full bulkhead, whatever its fallback status
	case status == http.StatusTooManyRequests, ge.kind == kindTooLarge:
		return grpcResourceExhausted
	case status == http.StatusForbidden:
		return grpcPermissionDenied
	case status == http.StatusNotImplemented:
		return grpcUnimplemented
	case ge.kind == kindBadRequest:
		return grpcInternal
	}
	return grpcUnavailable
}

// writeGRPCStatus writes a trailers-only gRPC response: HTTP 200 whose header block holds the status,
// and the pushback (milliseconds, at least 1) when pushback > 0.
func writeGRPCStatus(w http.ResponseWriter, code int, msg string, pushback time.Duration) {
	h := w.Header()
	h["Content-Type"] = []string{grpcContentType}
	h["Grpc-Status"] = []string{strconv.Itoa(code)}
	h["Grpc-Message"] = []string{grpcPercentEncode(msg)}
	if pushback > 0 {
		ms := max(int64((pushback+time.Millisecond-1)/time.Millisecond), 1)
		h["Grpc-Retry-Pushback-Ms"] = []string{strconv.FormatInt(ms, 10)}
	}
	w.WriteHeader(http.StatusOK)
}

// grpcPercentEncode encodes a grpc-message as the gRPC HTTP/2 protocol says: bytes outside
// printable ASCII, and '%', as %XX.
func grpcPercentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c > '~' || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// parseGRPCTimeout reads a grpc-timeout value: at most 8 digits and a unit (H, M, S, m, u, n).
func parseGRPCTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	units := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second,
		'm': time.Millisecond, 'u': time.Microsecond, 'n': time.Nanosecond}
	u, ok := units[v[len(v)-1]]
	if !ok {
		return 0, false
	}
	return time.Duration(n) * u, true
}

// grpcTimeoutError is the cause of a request's context ended by its grpc-timeout.
type grpcTimeoutError struct{ d time.Duration }

func (e *grpcTimeoutError) Error() string { return "grpc-timeout of " + e.d.String() + " passed" }

// grpcPrelude checks a gRPC request before its chain runs: Unimplemented (as a 501, for metrics) on
// a port that speaks HTTP/1.1 upstream; its grpc-timeout, if any, shortens the overall deadline
// (ctx and x.deadline). The cancel function returned must be called when the exchange ends.
func (x *exchange) grpcPrelude(ctx context.Context) (context.Context, context.CancelFunc, error) {
	pr := x.route
	if !pr.h2c {
		name := pr.portName
		if name == "" {
			name = strconv.Itoa(int(pr.port))
		}
		return ctx, nil, &gwError{kind: kindReject, status: http.StatusNotImplemented, msg: fmt.Sprintf(
			"port %s speaks HTTP/1.1 to its endpoints, which cannot carry gRPC (set its appProtocol to grpc or kubernetes.io/h2c)", name)}
	}
	d, ok := parseGRPCTimeout(x.in.Header.Get("Grpc-Timeout"))
	if !ok {
		return ctx, nil, nil
	}
	x.deadline = x.now.Add(d)
	ctx, cancel := context.WithDeadlineCause(ctx, x.deadline, &grpcTimeoutError{d})
	return ctx, cancel, nil
}

// grpcDeadlineSlack is how close to a call's grpc-timeout an upstream failure is taken for the
// deadline's doing: the upstream got the same grpc-timeout, and may give up (reset the stream) a
// moment before the gateway's own timer fires.
const grpcDeadlineSlack = 20 * time.Millisecond

// grpcTimedOut turns the failure of a request at its grpc-timeout into the gateway's timeout
// (DeadlineExceeded), rather than Unavailable.
func grpcTimedOut(ctx context.Context, x *exchange, err error) error {
	if x.in.Context().Err() != nil {
		return err
	}
	var te *grpcTimeoutError
	if !errors.As(context.Cause(ctx), &te) {
		dl, ok := ctx.Deadline()
		ge, isGW := err.(*gwError)
		d, hasTimeout := parseGRPCTimeout(x.in.Header.Get("Grpc-Timeout"))
		if !ok || !hasTimeout || time.Until(dl) > grpcDeadlineSlack || (isGW && ge.kind == kindReject) {
			return err
		}
		te = &grpcTimeoutError{d: d}
	}
	return &gwError{kind: kindTimeout, msg: "no response within the request's grpc-timeout of " + te.d.String()}
}
