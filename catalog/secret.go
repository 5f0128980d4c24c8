package catalog

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"

	"go.uber.org/zap/zapcore"
)

// Secret holds secret bytes from the configuration (an API key, a client
// secret). Every way of printing it prints REDACTED, so a careless %v,
// zap.Any or json.Marshal cannot leak it; Reveal is the one way out.
type Secret struct{ b []byte }

// NewSecret wraps s.
func NewSecret(s string) Secret { return Secret{b: []byte(s)} }

// Reveal returns the secret value. Call it only where the value is sent or
// compared, never where it could be logged.
func (s Secret) Reveal() string { return string(s.b) }

// Empty reports whether the secret is empty.
func (s Secret) Empty() bool { return len(s.b) == 0 }

// Equal compares s with v in constant time (for equal lengths).
func (s Secret) Equal(v string) bool {
	return len(s.b) > 0 && subtle.ConstantTimeCompare(s.b, []byte(v)) == 1
}

// Fingerprint returns the first 8 hex characters of the SHA-256 of the
// secret, for display; empty for an empty secret.
func (s Secret) Fingerprint() string {
	if len(s.b) == 0 {
		return ""
	}
	sum := sha256.Sum256(s.b)
	return hex.EncodeToString(sum[:4])
}

const redacted = "REDACTED"

// String implements fmt.Stringer.
func (Secret) String() string { return redacted }

// GoString implements fmt.GoStringer.
func (Secret) GoString() string { return redacted }

// Format implements fmt.Formatter so that every verb prints REDACTED.
func (Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalJSON implements json.Marshaler.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// MarshalLogObject implements zapcore.ObjectMarshaler.
func (Secret) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("value", redacted)
	return nil
}
