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

package server

import (
	"context"
	"errors"
	"fmt"

	authenticationv1 "k8s.io/api/authentication/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"resilience.dev/operator/internal/distribution"
)

// Authenticator decides whether a bearer token belongs to a gateway, and names the replica.
type Authenticator interface {
	// Authenticate returns the replica's name, or an error when the token is not a gateway's.
	Authenticate(ctx context.Context, token, claimedReplica string) (replica string, err error)
}

// ErrUnauthenticated is returned by authenticators for tokens that are not a gateway's.
var ErrUnauthenticated = errors.New("not a gateway's token")

// podNameExtra is where TokenReview reports the pod a projected token is bound to.
const podNameExtra = "authentication.kubernetes.io/pod-name"

// TokenReviewAuthenticator accepts the tokens of one ServiceAccount, for the gateway audience, as the
// API server's TokenReview judges them: a token of any other account, a token for another audience, an
// expired or a revoked token (its pod deleted) is refused.
type TokenReviewAuthenticator struct {
	Client client.Client
	// Namespace and ServiceAccount name the gateways' ServiceAccount.
	Namespace, ServiceAccount string
}

// Authenticate implements Authenticator. The replica is the pod the token is bound to when the token
// says so; otherwise the name the gateway claims (it is still one of the gateway's own tokens).
func (a *TokenReviewAuthenticator) Authenticate(ctx context.Context, token, claimed string) (string, error) {
	tr := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{distribution.Audience}}}
	if err := a.Client.Create(ctx, tr); err != nil {
		return "", fmt.Errorf("token review: %w", err)
	}
	if !tr.Status.Authenticated {
		return "", fmt.Errorf("%w: %s", ErrUnauthenticated, orDefault(tr.Status.Error, "token not authenticated"))
	}
	want := fmt.Sprintf("system:serviceaccount:%s:%s", a.Namespace, a.ServiceAccount)
	if tr.Status.User.Username != want {
		return "", fmt.Errorf("%w: %s is not %s", ErrUnauthenticated, tr.Status.User.Username, want)
	}
	if pods := tr.Status.User.Extra[podNameExtra]; len(pods) == 1 && pods[0] != "" {
		return pods[0], nil
	}
	if claimed == "" {
		return "gateway", nil
	}
	return claimed, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
