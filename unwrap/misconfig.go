package unwrap

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// A permanent misconfiguration is reported as one, not as an outage to
// retry (issue 16): when the token endpoint refuses the sidecar's own
// client credentials (401, or invalid_client / unauthorized_client), the
// exchange block's client_id or secret does not match the hook's
// exchange_client. Then:
//   - requests that need an exchange get 500 server_error ("the sidecar is
//     misconfigured") at once, without Retry-After: retrying cannot help,
//     and the endpoint is not asked again for each of them (its failed
//     authentication limit would soon answer 429 instead);
//   - an error line is logged, at most once a minute;
//   - embedtoken_sidecar_exchange_failures_total{reason="invalid_client"}
//     counts each refused request;
//   - the sidecar is not ready (/readyz says why) until the endpoint
//     accepts the client again: at most every probeEvery, a probe exchange
//     (a subject token that is no token) tells whether the client
//     authenticates: a refusal of the subject token means it does.

// Reasons and answers of a refused exchange client.
const (
	descMisconfigured = "the sidecar is misconfigured: its token exchange client was refused"

	// probeEvery is how often a refused exchange client is tried again.
	probeEvery = 30 * time.Second
	// probeSubject is the subject token of a probe: never a token, so the
	// endpoint refuses it (400) once the client authenticates.
	probeSubject = "embedtoken-readiness-probe"
)

// Exchange failure reasons (label of exchange_failures_total).
const (
	exchFailClient      = "invalid_client"       // the endpoint refused the sidecar's credentials
	exchFailUnavailable = "unavailable"          // the endpoint failed or could not be reached
	exchFailIssued      = "invalid_issued_token" // the issued token failed verification
)

// exchangeHealth is the state of the exchange client's credentials.
type exchangeHealth struct {
	broken    atomic.Pointer[string] // why, while the client is refused
	probing   atomic.Bool
	lastProbe atomic.Int64 // unix nanoseconds
	logged    rateLimited
}

// clientRefused reports an answer that refuses the client itself.
func clientRefused(err error) bool {
	var se *statusError
	return errors.As(err, &se) && (se.Status == http.StatusUnauthorized || se.Code == "invalid_client" || se.Code == "unauthorized_client")
}

// misconfigured is the answer while the exchange client is refused.
func misconfigured(err error) *Failure {
	return &Failure{Status: http.StatusInternalServerError, Code: codeServerError, Description: descMisconfigured,
		Reason: ReasonExchangeClient, Inner: true, Err: err}
}

// exchangeRefusedClient records a refusal of the client: not ready, an
// error line (rate-limited), and the answer.
func (v *Verifier) exchangeRefusedClient(err error) *Failure {
	why := "token exchange: the endpoint refused the exchange client (" + err.Error() + "): check the exchange block's client_id and secret against the hook's exchange_client"
	v.xhealth.broken.Store(&why)
	v.xhealth.lastProbe.Store(v.now().UnixNano())
	if v.xhealth.logged.allow(v.now()) {
		v.log.Error("token exchange client refused: the sidecar is misconfigured", zap.String(fieldReason, string(ReasonExchangeClient)), zap.Error(err))
	}
	return misconfigured(err)
}

// exchangeBlocked answers at once while the client is refused, and starts
// a probe when one is due.
func (v *Verifier) exchangeBlocked() *Failure {
	why := v.xhealth.broken.Load()
	if why == nil {
		return nil
	}
	v.probeExchange()
	v.metrics.exchangeFailed(exchFailClient)
	return misconfigured(errors.New(*why))
}

// exchangeHealthy clears the refused state after an exchange succeeded.
func (v *Verifier) exchangeHealthy() {
	if v.xhealth.broken.Swap(nil) != nil {
		v.log.Info("token exchange client accepted again")
	}
}

// probeExchange asks the endpoint, at most every probeEvery and once at a
// time, whether it accepts the client now.
func (v *Verifier) probeExchange() {
	if v.exchanger == nil || v.xhealth.broken.Load() == nil {
		return
	}
	now := v.now().UnixNano()
	last := v.xhealth.lastProbe.Load()
	if now-last < int64(probeEvery) || !v.xhealth.probing.CompareAndSwap(false, true) {
		return
	}
	v.xhealth.lastProbe.Store(now)
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		defer v.xhealth.probing.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), exchangeTimeout)
		defer cancel()
		_, err := v.exchanger.Exchange(ctx, probeSubject, v.api.Audience)
		if err == nil || errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrInsufficientScope) {
			v.exchangeHealthy()
		}
	}()
}

// exchangeNotReady says why the exchange makes the sidecar not ready, or
// "" (and starts a probe when one is due).
func (v *Verifier) exchangeNotReady() string {
	why := v.xhealth.broken.Load()
	if why == nil {
		return ""
	}
	v.probeExchange()
	return *why
}
