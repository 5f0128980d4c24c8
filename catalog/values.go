package catalog

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// diagnostics collects diagnostics in source order.
type diagnostics struct{ list hcl.Diagnostics }

func (d *diagnostics) errorf(rng hcl.Range, summary, format string, args ...any) {
	r := rng
	d.list = append(d.list, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: &r})
}

func (d *diagnostics) warnf(rng hcl.Range, summary, format string, args ...any) {
	r := rng
	d.list = append(d.list, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: &r})
}

func (d *diagnostics) add(ds hcl.Diagnostics) { d.list = append(d.list, ds...) }

// present reports whether an attribute range was filled, that is whether
// the attribute was written (gohcl reports missing required ones itself).
func present(r hcl.Range) bool { return r.Filename != "" }

// pos renders a range's start for a Detail ("catalog.hcl:12:1").
func pos(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

// isNull reports whether an optional expression was left out.
func isNull(expr hcl.Expression) bool {
	if expr == nil {
		return true
	}
	v, diags := expr.Value(nil)
	return !diags.HasErrors() && v.IsNull()
}

// strList decodes a list of strings, returning each element's range where
// the list is written literally (so a diagnostic can point at one element).
func strList(expr hcl.Expression, ctx *hcl.EvalContext, d *diagnostics) ([]string, []hcl.Range) {
	if isNull(expr) {
		return nil, nil
	}
	if elems, ds := hcl.ExprList(expr); !ds.HasErrors() {
		vals := make([]string, 0, len(elems))
		rngs := make([]hcl.Range, 0, len(elems))
		for _, e := range elems {
			var s string
			if ds := gohcl.DecodeExpression(e, ctx, &s); ds.HasErrors() {
				d.add(ds)
				continue
			}
			vals = append(vals, s)
			rngs = append(rngs, e.Range())
		}
		return vals, rngs
	}
	var vals []string
	if ds := gohcl.DecodeExpression(expr, ctx, &vals); ds.HasErrors() {
		d.add(ds)
		return nil, nil
	}
	rngs := make([]hcl.Range, len(vals))
	for i := range rngs {
		rngs[i] = expr.Range()
	}
	return vals, rngs
}

// secretValue evaluates a secret attribute and warns when it is a literal
// (secrets should come through env() or file()).
func secretValue(expr hcl.Expression, ctx *hcl.EvalContext, attr string, d *diagnostics) (Secret, bool) {
	if isNull(expr) {
		return Secret{}, false
	}
	var s string
	if ds := gohcl.DecodeExpression(expr, ctx, &s); ds.HasErrors() {
		d.add(ds)
		return Secret{}, true
	}
	if s != "" && isLiteral(expr) {
		d.warnf(expr.Range(), "Literal secret",
			"The %s is written in the configuration. Read it with env(\"NAME\") or file(\"path\") so that it stays out of version control.", attr)
	}
	return NewSecret(s), true
}

// isLiteral reports whether expr calls no function and reads no variable.
func isLiteral(expr hcl.Expression) bool {
	if len(expr.Variables()) > 0 {
		return false
	}
	se, ok := expr.(hclsyntax.Expression)
	if !ok {
		return true
	}
	literal := true
	hclsyntax.VisitAll(se, func(n hclsyntax.Node) hcl.Diagnostics {
		if _, ok := n.(*hclsyntax.FunctionCallExpr); ok {
			literal = false
		}
		return nil
	})
	return literal
}

// claimPath decodes a claim path: a dotted string or a list of segments.
func claimPath(expr hcl.Expression, ctx *hcl.EvalContext, d *diagnostics) ([]string, bool) {
	if isNull(expr) {
		return nil, false
	}
	v, ds := expr.Value(ctx)
	if ds.HasErrors() {
		d.add(ds)
		return nil, true
	}
	var segs []string
	switch {
	case v.Type() == cty.String && v.IsKnown() && !v.IsNull():
		segs = strings.Split(v.AsString(), ".")
	case v.Type().IsTupleType() || v.Type().IsListType():
		segs, _ = strList(expr, ctx, d)
	default:
		d.errorf(expr.Range(), "Invalid claim path",
			"A claim path is a dotted string (\"ext.embedded_tokens\") or a list of segments ([\"ext\", \"https://example.com/tokens\"]).")
		return nil, true
	}
	for _, s := range segs {
		if s == "" {
			d.errorf(expr.Range(), "Invalid claim path", "The claim path has an empty segment; write it as \"a.b\" or as a list of non-empty segments.")
			return nil, true
		}
	}
	return segs, true
}

// duration parses an optional duration within (min, max]; zero min means
// the value must be positive, a negative min allows zero.
func duration(s *string, rng hcl.Range, attr string, def, min, max time.Duration, d *diagnostics) time.Duration {
	if s == nil {
		return def
	}
	v, err := time.ParseDuration(*s)
	if err != nil {
		d.errorf(rng, "Invalid duration", "The %s %q is not a duration. Write it as a number with a unit, such as \"30s\", \"5m\" or \"1h\".", attr, *s)
		return def
	}
	if v < 0 || (v == 0 && min >= 0) || (min > 0 && v < min) || v > max {
		lo := "more than 0s"
		if min < 0 {
			lo = "at least 0s"
		} else if min > 0 {
			lo = "at least " + min.String()
		}
		d.errorf(rng, "Duration out of range", "The %s is %s; it must be %s and at most %s.", attr, v, lo, max)
		return def
	}
	return v
}

// algorithms known to the allow-lists: asymmetric JWS algorithms only.
var knownAlgs = map[string]jose.SignatureAlgorithm{
	"EdDSA": jose.EdDSA,
	"ES256": jose.ES256, "ES384": jose.ES384, "ES512": jose.ES512,
	"RS256": jose.RS256, "RS384": jose.RS384, "RS512": jose.RS512,
	"PS256": jose.PS256, "PS384": jose.PS384, "PS512": jose.PS512,
}

// signingAlgs are the algorithms a signing_key (and keygen) may use.
var signingAlgs = []string{"EdDSA", "ES256", "RS256", "PS256"}

func parseAlg(s string, rng hcl.Range, allowed []string, d *diagnostics) (jose.SignatureAlgorithm, bool) {
	alg, ok := knownAlgs[s]
	if ok && allowed != nil {
		ok = contains(allowed, s)
	}
	if !ok {
		detail := fmt.Sprintf("%q is not an accepted algorithm. Use one of %s.", s, strings.Join(allowedList(allowed), ", "))
		if strings.HasPrefix(strings.ToUpper(s), "HS") || strings.EqualFold(s, "none") {
			detail += " Symmetric algorithms and none are never accepted: a verifier must not hold the signing secret."
		}
		d.errorf(rng, "Unknown algorithm", "%s", detail)
		return "", false
	}
	return alg, true
}

func allowedList(allowed []string) []string {
	if allowed != nil {
		return allowed
	}
	return []string{"EdDSA", "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkURL accepts an absolute http or https URL with a host and no user
// information or fragment.
func checkURL(s string, rng hcl.Range, attr string, d *diagnostics) bool {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" {
		d.errorf(rng, "Invalid URL", "The %s %q must be an absolute http:// or https:// URL with a host and no user information or fragment.", attr, s)
		return false
	}
	return true
}

// checkListen accepts host:port with a numeric port.
func checkListen(s string, rng hcl.Range, attr string, d *diagnostics) bool {
	_, port, err := net.SplitHostPort(s)
	if err == nil {
		var n int
		n, err = strconv.Atoi(port)
		if err == nil && (n < 0 || n > 65535) {
			err = fmt.Errorf("port out of range")
		}
	}
	if err != nil {
		d.errorf(rng, "Invalid listen address", "The %s %q must be host:port, such as \"127.0.0.1:8443\".", attr, s)
		return false
	}
	return true
}

// validScope reports whether s is an RFC 6749 scope-token.
func validScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return true
}

// validName reports whether s may name an API (it appears in realms,
// claim keys and metric labels).
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || (i > 0 && (c == '-' || c == '_' || c == '.'))
		if !ok {
			return false
		}
	}
	return true
}

// validHeaderName reports whether s is an HTTP token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
