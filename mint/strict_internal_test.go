package mint

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/embedtoken/embedtoken/internal/strictjson"
)

// strictTargets are the types the hooks decode with decodeStrict.
var strictTargets = []any{&hydraRequest{}, &genericRequest{}, &oktaRequest{}, &map[string]json.RawMessage{}}

// TestCheckMembers: checkMembers refuses what strictjson.CheckFields
// refuses, case variants at every depth above all, and takes the full
// check whenever a name could fold.
func TestCheckMembers(t *testing.T) {
	sample := hydraSample(t)
	for _, tc := range []struct {
		name     string
		body     string
		wantErr  error
		mayFold  bool
		onlyType any
	}{
		{"sample", string(sample), nil, false, &hydraRequest{}},
		{"top-level variant", `{"Session":{}}`, strictjson.ErrCaseVariant, true, &hydraRequest{}},
		{"nested variant", `{"session":{"id_token":{"Subject":"admin","subject":"u"}}}`, strictjson.ErrCaseVariant, true, &hydraRequest{}},
		{"deep variant", `{"session":{"id_token":{"id_token_claims":{"EXT":{}}}}}`, strictjson.ErrCaseVariant, true, &hydraRequest{}},
		{"variant in request", `{"request":{"Granted_Scopes":["admin"]}}`, strictjson.ErrCaseVariant, true, &hydraRequest{}},
		{"escaped name", `{"session":{"id_token":{"\u0053ubject":"admin"}}}`, strictjson.ErrCaseVariant, true, &hydraRequest{}},
		{"unicode fold", "{\"session\":{\"id_token\":{\"\u017fubject\":\"admin\"}}}", strictjson.ErrCaseVariant, true, &hydraRequest{}},
		{"duplicate", `{"request":{"client_id":"a","client_id":"b"}}`, strictjson.ErrDuplicate, false, &hydraRequest{}},
		{"trailing", `{} {}`, strictjson.ErrTrailing, false, nil},
		{"variant at another depth", `{"extra":{"Subject":1}}`, nil, true, &hydraRequest{}},
		{"variant as a value", `{"session":{"extra":{"x":"Subject"}}}`, nil, false, &hydraRequest{}},
		{"unknown members", `{"foo":{"bar":[{"baz":1}]}}`, nil, false, &hydraRequest{}},
		{"long name", `{"` + string(bytes.Repeat([]byte("A"), 100)) + `":1}`, nil, false, &hydraRequest{}},
	} {
		for _, v := range strictTargets {
			if tc.onlyType != nil && !sameType(v, tc.onlyType) {
				continue
			}
			want := strictjson.CheckFields([]byte(tc.body), v)
			got := checkMembers([]byte(tc.body), v)
			if !errors.Is(got, tc.wantErr) && !(got == nil && tc.wantErr == nil) || errString(got) != errString(want) {
				t.Errorf("%s (%T): checkMembers = %v, CheckFields = %v, want %v", tc.name, v, got, want, tc.wantErr)
			}
			if tc.onlyType != nil && tc.wantErr != strictjson.ErrDuplicate && tc.wantErr != strictjson.ErrTrailing {
				if got := foldSetOf(reflectType(v)).mayFold([]byte(tc.body)); got != tc.mayFold {
					t.Errorf("%s (%T): mayFold = %v, want %v", tc.name, v, got, tc.mayFold)
				}
			}
		}
	}
}

// FuzzCheckMembers: checkMembers and strictjson.CheckFields agree on every
// document, for every type the hooks decode.
func FuzzCheckMembers(f *testing.F) {
	f.Add(hydraSample(f))
	for _, p := range []string{"testdata/hydra-client-credentials.json", "testdata/hydra-refresh.json", "testdata/okta/token-hook-request.json"} {
		if b, err := os.ReadFile(filepath.FromSlash(p)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"session":{"id_token":{"Subject":"admin","subject":"u"}}}`))
	f.Add([]byte(`{"sub":"u","SUB":"admin","claims":{"Tenant":1}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, v := range strictTargets {
			want := strictjson.CheckFields(body, v)
			got := checkMembers(body, v)
			if errString(got) != errString(want) {
				t.Fatalf("%T: checkMembers = %v, CheckFields = %v", v, got, want)
			}
		}
	})
}

func hydraSample(t testing.TB) []byte {
	b, err := os.ReadFile("../../shared/samples/hydra-v2.3.0/token-hook-request.client_credentials.json")
	if err != nil {
		b, err = os.ReadFile("testdata/hydra-client-credentials.json")
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func reflectType(v any) reflect.Type { return reflect.TypeOf(v) }

func sameType(a, b any) bool { return reflect.TypeOf(a) == reflect.TypeOf(b) }
