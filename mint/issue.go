package mint

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/embedtoken/embedtoken/catalog"
)

// Errors of Issue, the token exchange's minting. Like Mint's, each is
// deterministic (Denied reports true).
var (
	// ErrInvalidTarget: the requested API is unknown, not exposed, or its
	// audience was not granted to the subject (mint_for = "audience").
	ErrInvalidTarget = errors.New("mint: invalid target")
	// ErrInvalidScope: nothing is left of the scopes once narrowed to the
	// API's and the requested ones.
	ErrInvalidScope = errors.New("mint: no scope left")
)

// Errors a SubjectVerifier returns, wrapped (errors.Is matches them).
var (
	// ErrSubjectToken: the subject token is invalid, expired or not
	// acceptable (400 invalid_request). It is the client's fault.
	ErrSubjectToken = errors.New("mint: subject token refused")
	// ErrSubjectExpired is an ErrSubjectToken: the subject token expired.
	ErrSubjectExpired = fmt.Errorf("%w: expired", ErrSubjectToken)
	// ErrSubjectMinterToken is an ErrSubjectToken: the subject token is one
	// this minter signed, never a subject token.
	ErrSubjectMinterToken = fmt.Errorf("%w: a minter token", ErrSubjectToken)
	// ErrSubjectUnavailable: the subject token cannot be verified now (a
	// key set or an introspection endpoint is down). The token may be fine:
	// 503, and the client retries.
	ErrSubjectUnavailable = errors.New("mint: subject token verifier unavailable")
)

// SubjectVerifier verifies the subject token of a token exchange: an access
// token of a trust issuer (a JWT, or an opaque token introspected), never a
// token of this minter. mint declares it; cmd implements it around the
// sidecar's verifier, so that mint never imports unwrap.
//
// Errors must wrap ErrSubjectToken (or one of its refinements) when the
// token is refused and ErrSubjectUnavailable when a dependency failed; any
// other error is answered with 500. No error text may hold token text.
// Implementations must be safe for concurrent use.
type SubjectVerifier interface {
	VerifySubject(ctx context.Context, token string) (*SubjectToken, error)
}

// SubjectToken is a verified subject token.
type SubjectToken struct {
	// Subject is what minting needs: sub, client_id, the scopes (scope and
	// scp), the audiences (aud), the claims an API may copy, and exp.
	Subject
	// Issuer is the token's iss, for logs.
	Issuer string
	// ID is the token's jti, for the audit log; may be empty.
	ID string
	// Act is the token's act claim (RFC 8693 4.1) as JSON, or nil.
	Act json.RawMessage
}

// IssueRequest is one token exchange to mint.
type IssueRequest struct {
	// Subject is the verified subject token's subject.
	Subject Subject
	// API names the exposed API the token is for.
	API string
	// Scopes, when not nil, narrow the subject's scopes further: the
	// granted set becomes Subject.Scopes ∩ Scopes, for the issued token and
	// for the tokens nested in it.
	Scopes []string
	// Actor is the exchange client: the sub of the act claim. Required.
	Actor string
	// PriorAct is the subject token's act claim, nested in the new one; nil
	// when it has none.
	PriorAct json.RawMessage
	// SubjectID is the subject token's jti, for the audit log; optional.
	SubjectID string
}

// Issued is the token an exchange minted.
type Issued struct {
	// Token is the compact JWS.
	Token string
	// API is the API it is for.
	API string
	// JTI is its jti.
	JTI string
	// Scope is its scope claim as a list (empty for an API without scopes).
	Scope []string
	// Exp is its expiry; ExpiresIn is Exp minus the time it was issued, in
	// whole seconds.
	Exp       time.Time
	ExpiresIn int64
	// Minted lists every token signed, the nested ones and then the issued
	// one.
	Minted []Minted
}

// Issue mints the token of one exposed API for a token exchange (RFC 8693),
// by the same narrowing and signing code as Mint: scope = subject scopes ∩
// API scopes ∩ requested scopes, only declared claims, the subject's
// client_id, exp never past the subject's, the tokens of the APIs it calls
// nested in it as in an embedded token, and on every token minted an act
// claim {"sub": Actor} with PriorAct nested inside (RFC 8693 4.1).
//
// An API that declares no scopes gets a token without a scope claim, unless
// scopes were requested (then ErrInvalidScope: none of them is the API's).
// Errors for which Denied is true are the request's fault.
func (m *Minter) Issue(ctx context.Context, req IssueRequest) (Issued, error) {
	p := m.apis[req.API]
	switch {
	case p == nil:
		return Issued{}, fmt.Errorf("%w: unknown api", ErrInvalidTarget)
	case !p.api.Exposed:
		return Issued{}, fmt.Errorf("%w: api %s is not exposed", ErrInvalidTarget, jsonString(p.api.Name))
	case req.Actor == "":
		return Issued{}, errors.New("mint: issue needs an actor")
	}
	act, err := actClaim(req.Actor, req.PriorAct)
	if err != nil {
		return Issued{}, err
	}
	s := req.Subject
	if req.Scopes != nil {
		s.Scopes = intersect(s.Scopes, req.Scopes)
	}
	now := m.now()
	st, outerExp, err := m.newState(&s, now)
	if err != nil {
		return Issued{}, err
	}
	st.act = act
	if st.audiences != nil && !st.audiences[p.api.Audience] {
		return Issued{}, fmt.Errorf("%w: the subject token was not granted this audience", ErrInvalidTarget)
	}
	if len(p.api.Scopes) == 0 && len(req.Scopes) > 0 {
		return Issued{}, fmt.Errorf("%w: the api declares no scopes", ErrInvalidScope)
	}
	if !st.eligible(p) {
		return Issued{}, fmt.Errorf("%w: the subject token grants none of the api's scopes", ErrInvalidScope)
	}
	if err := st.checkClaims([]*apiPlan{p}, map[*apiPlan]bool{}); err != nil {
		return Issued{}, err
	}
	tok, err := st.mint(ctx, p, outerExp)
	if err != nil {
		return Issued{}, err
	}
	top := st.minted[len(st.minted)-1]
	out := Issued{
		Token:     tok,
		API:       p.api.Name,
		JTI:       top.JTI,
		Scope:     scopeOf(p, st.granted),
		Exp:       top.Exp,
		ExpiresIn: top.Exp.Unix() - st.now,
		Minted:    st.minted,
	}
	for _, t := range out.Minted {
		m.metrics.minted(t.API)
	}
	m.auditIssue(&req, &s, &out)
	return out, nil
}

// auditIssue records one exchange: the exchange client, the subject's
// client and fingerprint, the API, the jtis — never a token.
func (m *Minter) auditIssue(req *IssueRequest, s *Subject, out *Issued) {
	jtis := make([]string, len(out.Minted))
	for i, t := range out.Minted {
		jtis[i] = t.JTI
	}
	fields := []zap.Field{
		zap.String(fieldExchangeClient, req.Actor),
		zap.String(fieldClient, s.ClientID),
		zap.String(fieldSubjectFP, Fingerprint(s.Sub)),
		zap.String(fieldAPI, out.API),
		zap.String(fieldKID, m.keys.kid),
		zap.String(fieldJTI, out.JTI),
		zap.Strings(fieldJTIs, jtis),
	}
	if req.SubjectID != "" {
		fields = append(fields, zap.String(fieldSubjectJTI, req.SubjectID))
	}
	m.audit.Info("exchanged", fields...)
}

// actClaim returns the compact JSON of {"sub": actor, "act": prior}: the
// prior actors stay nested (RFC 8693 4.1). prior must be a JSON object of at
// most catalog.MaxClaimValueBytes once compacted.
func actClaim(actor string, prior json.RawMessage) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"sub":`)
	b.WriteString(jsonString(actor))
	if p := bytes.TrimSpace(prior); len(p) > 0 && string(p) != "null" {
		var c bytes.Buffer
		if err := json.Compact(&c, p); err != nil || c.Bytes()[0] != '{' {
			return nil, fmt.Errorf("%w: the act claim of the subject token is not a JSON object", ErrInvalidSubject)
		}
		if c.Len() > catalog.MaxClaimValueBytes {
			return nil, fmt.Errorf("%w: the act claim of the subject token is over %d bytes", ErrInvalidSubject, catalog.MaxClaimValueBytes)
		}
		b.WriteString(`,"act":`)
		b.Write(c.Bytes())
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// intersect returns the elements of a that are in b, in a's order, never
// nil.
func intersect(a, b []string) []string {
	out := make([]string, 0, len(b))
	for _, x := range a {
		for _, y := range b {
			if x == y {
				out = append(out, x)
				break
			}
		}
	}
	return out
}
