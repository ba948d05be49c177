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

import "fmt"

// GRPCCodeNames are the gRPC status codes by number, named as Go's codes.Code prints them
// (google.golang.org/grpc/codes): the names of RetryGRPCCodes and FailureGRPCCodes.
var GRPCCodeNames = [...]string{"OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded",
	"NotFound", "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
	"OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"}

// GRPCCode returns the number of the gRPC status code named name.
func GRPCCode(name string) (int, error) {
	for i, n := range GRPCCodeNames {
		if n == name {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%q is not a gRPC status code name", name)
}

func validGRPCCodes(names []string) error {
	for _, n := range names {
		if _, err := GRPCCode(n); err != nil {
			return err
		}
	}
	return nil
}
