// Package cognito is the AWS Cognito adapter: a Lambda handler for the user
// pool's pre token generation trigger, event versions V2_0 (user
// authentication) and V3_0 (user and machine-to-machine client credentials),
// built on the mint Go API. It adds the embedded map to the access token
// through
// response.claimsAndScopeOverrideDetails.accessTokenGeneration.claimsToAddOrOverride.
//
// It is linked only into cmd/embedtoken-cognito, so that the AWS Lambda
// dependency never weighs on the sidecar.
//
// Cognito's contract (https://docs.aws.amazon.com/cognito/latest/developerguide/user-pool-lambda-pre-token-generation.html):
// the function returns the event with its response filled in; an error
// fails the authentication, so no token is issued (fail closed). The event
// says nothing of the access token's lifetime: it is the app client's
// access-token validity, which Handler.Validity must equal or undercut.
package cognito

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/embedtoken/embedtoken/internal/strictjson"
	"github.com/embedtoken/embedtoken/mint"
)

// MaxEventBytes bounds an event; Cognito's are a few KiB.
const MaxEventBytes = 256 << 10

// ClientCredentials is the trigger source of a machine-to-machine (client
// credentials) token: its sub is the app client id and it has no user.
const ClientCredentials = "TokenGeneration_ClientCredentials"

// triggerSources are the trigger sources of the pre token generation
// trigger.
var triggerSources = map[string]bool{
	"TokenGeneration_HostedAuth":           true,
	"TokenGeneration_Authentication":       true,
	"TokenGeneration_NewPasswordChallenge": true,
	"TokenGeneration_AuthenticateDevice":   true,
	"TokenGeneration_RefreshTokens":        true,
	ClientCredentials:                      true,
}

// ErrEvent is the error of an event the handler refuses; its text names no
// input value. Cognito then issues no token.
var ErrEvent = errors.New("embedtoken: refused pre token generation event")

// Handler mints for pre token generation events. It implements the
// aws-lambda-go lambda.Handler interface, decoding each event itself
// (duplicate member names refused, size bounded).
type Handler struct {
	// Minter mints the embedded map. Required.
	Minter *mint.Minter
	// Validity is the app client's access-token validity: the outer token
	// expires at now + Validity. Required.
	Validity time.Duration
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// Invoke decodes one event, mints and returns the event with its response.
func (h *Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	ev, err := Decode(payload)
	if err != nil {
		return nil, err
	}
	out, err := h.Handle(ctx, ev)
	if err != nil {
		return nil, err
	}
	return json.Marshal(out)
}

// Decode reads a V2_0 or V3_0 event: one JSON object, at most
// MaxEventBytes, without duplicate member names.
func Decode(payload []byte) (events.CognitoEventUserPoolsPreTokenGenV2_0, error) {
	var ev events.CognitoEventUserPoolsPreTokenGenV2_0
	if len(payload) > MaxEventBytes {
		return ev, fmt.Errorf("%w: event over %d bytes", ErrEvent, MaxEventBytes)
	}
	if err := strictjson.CheckObject(payload); err != nil {
		return ev, fmt.Errorf("%w: %v", ErrEvent, err)
	}
	if err := json.Unmarshal(payload, &ev); err != nil {
		return ev, fmt.Errorf("%w: the event does not have the pre token generation V2_0 shape", ErrEvent)
	}
	return ev, nil
}

// Subject maps an event onto minting: sub (the user's sub attribute, or the
// app client id for client credentials), the app client, the granted
// scopes, the user's attributes as profile claims, and the expiry now +
// validity.
func Subject(ev *events.CognitoEventUserPoolsPreTokenGenV2_0, now time.Time, validity time.Duration) (mint.Subject, error) {
	switch {
	case ev.Version != "2" && ev.Version != "3":
		return mint.Subject{}, fmt.Errorf("%w: event version must be 2 or 3 (V2_0 or V3_0: the versions that customize access tokens)", ErrEvent)
	case !triggerSources[ev.TriggerSource]:
		return mint.Subject{}, fmt.Errorf("%w: unknown triggerSource", ErrEvent)
	case ev.CallerContext.ClientID == "":
		return mint.Subject{}, fmt.Errorf("%w: callerContext.clientId is empty", ErrEvent)
	case validity <= 0:
		return mint.Subject{}, errors.New("embedtoken: the access-token validity is not configured")
	}
	s := mint.Subject{
		ClientID: ev.CallerContext.ClientID,
		Scopes:   ev.Request.Scopes,
		Exp:      now.Add(validity),
	}
	if ev.TriggerSource == ClientCredentials {
		s.Sub = ev.CallerContext.ClientID
	} else {
		s.Sub = ev.Request.UserAttributes["sub"]
		if s.Sub == "" {
			return mint.Subject{}, fmt.Errorf("%w: request.userAttributes.sub is empty", ErrEvent)
		}
	}
	if len(ev.Request.UserAttributes) > 0 {
		s.Claims = make(map[string]any, len(ev.Request.UserAttributes))
		for k, v := range ev.Request.UserAttributes {
			s.Claims[k] = v
		}
	}
	return s, nil
}

// Handle mints for one decoded event and returns it with the response: the
// embedded map under minter.claim in the access token's
// claimsToAddOrOverride, and the request's group configuration copied to
// groupOverrideDetails (an empty one would suppress the user's groups).
func (h *Handler) Handle(ctx context.Context, ev events.CognitoEventUserPoolsPreTokenGenV2_0) (events.CognitoEventUserPoolsPreTokenGenV2_0, error) {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	if h.Minter == nil {
		return ev, errors.New("embedtoken: no minter")
	}
	s, err := Subject(&ev, now(), h.Validity)
	if err != nil {
		return ev, err
	}
	res, err := h.Minter.Mint(ctx, s)
	if err != nil {
		if mint.Denied(err) {
			return ev, fmt.Errorf("%w: %v", ErrEvent, err)
		}
		return ev, fmt.Errorf("embedtoken: minting failed: %w", err)
	}
	ev.Response = events.CognitoEventUserPoolsPreTokenGenResponseV2_0{
		ClaimsAndScopeOverrideDetails: events.ClaimsAndScopeOverrideDetailsV2_0{
			AccessTokenGeneration: events.AccessTokenGenerationV2_0{
				ClaimsToAddOrOverride: map[string]interface{}{res.Claim: json.RawMessage(res.MapJSON())},
			},
			GroupOverrideDetails: ev.Request.GroupConfiguration,
		},
	}
	return ev, nil
}
