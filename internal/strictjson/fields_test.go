package strictjson

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

type inner struct {
	Subject string `json:"subject"`
}

type embedded struct {
	Promoted string `json:"promoted"`
}

type target struct {
	embedded
	ClientID string            `json:"client_id"`
	Scopes   []string          `json:"granted_scopes"`
	Untagged string            // JSON name "Untagged"
	Skipped  string            `json:"-"`
	Inner    inner             `json:"inner"`
	Ptr      *inner            `json:"ptr"`
	List     []inner           `json:"list"`
	Map      map[string]inner  `json:"map"`
	Raw      json.RawMessage   `json:"raw"`
	When     time.Time         `json:"when"`
	Free     map[string]string `json:"free"`
	private  string
}

func TestCheckFields(t *testing.T) {
	cases := []struct {
		name, doc string
		wantErr   error
		field     string // named in the error
	}{
		{"exact names", `{"client_id":"a","granted_scopes":["x"],"inner":{"subject":"s"},"Untagged":"u","promoted":"p"}`, nil, ""},
		{"unknown names pass", `{"other":1,"OTHER":2,"inner":{"x":1}}`, nil, ""},
		{"case variant beside the name", `{"client_id":"a","CLIENT_ID":"evil"}`, ErrCaseVariant, "client_id"},
		{"case variant alone", `{"Client_Id":"evil"}`, ErrCaseVariant, "client_id"},
		{"Unicode fold (long s)", `{"inner":{"\u017fubject":"admin"}}`, ErrCaseVariant, "inner.subject"},
		{"escaped case variant", `{"\u0043lient_id":"x"}`, ErrCaseVariant, "client_id"},
		{"lower case of an untagged field", "{\"Untagged\":\"a\",\"untagged\":\"b\"}", ErrCaseVariant, "Untagged"},
		{"nested struct", `{"inner":{"subject":"a","SUBJECT":"admin"}}`, ErrCaseVariant, "inner.subject"},
		{"through a pointer", `{"ptr":{"Subject":"admin"}}`, ErrCaseVariant, "ptr.subject"},
		{"in a slice", `{"list":[{"subject":"a"},{"SUBJECT":"b"}]}`, ErrCaseVariant, "list[].subject"},
		{"in a map value", `{"map":{"k":{"SUBJECT":"b"}}}`, ErrCaseVariant, "map{}.subject"},
		{"promoted field", `{"PROMOTED":"x"}`, ErrCaseVariant, "promoted"},
		{"case variant of a nested member name", `{"INNER":{}}`, ErrCaseVariant, "inner"},
		{"map keys are exact", `{"free":{"a":"1","A":"2"}}`, nil, ""},
		{"raw messages are opaque", `{"raw":{"x":1,"X":2}}`, nil, ""},
		{"skipped field", `{"Skipped":"x","SKIPPED":"y"}`, nil, ""},
		{"unexported field", `{"private":"x"}`, nil, ""},
		{"wrong type is the decoder's", `{"inner":"x","list":{"a":1}}`, nil, ""},
		{"exact duplicate", `{"client_id":"a","client_id":"b"}`, ErrDuplicate, ""},
		{"leading whitespace", " \n\t{\"client_id\":\"a\"}", nil, ""},
		{"not an object", `[]`, ErrNotObject, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckFields([]byte(tc.doc), &target{})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
			if tc.field != "" && !strings.HasSuffix(err.Error(), ": "+tc.field) {
				t.Fatalf("error %q does not name %s", err, tc.field)
			}
		})
	}
}

// TestCheckFieldsAgreesWithDecoder: a document that passes decodes every
// field from its exact name only.
func TestCheckFieldsAgreesWithDecoder(t *testing.T) {
	doc := `{"client_id":"a","CLIENT_ID":"evil"}`
	var v target
	if err := json.Unmarshal([]byte(doc), &v); err != nil || v.ClientID != "evil" {
		t.Fatalf("encoding/json no longer folds case (%q, %v): revisit CheckFields", v.ClientID, err)
	}
	if CheckFields([]byte(doc), &v) == nil {
		t.Fatal("accepted")
	}
}

func TestCheckFieldsTypes(t *testing.T) {
	for _, v := range []any{nil, map[string]any{}, []int{}, new(json.RawMessage), new(string)} {
		if err := CheckFields([]byte(`{"A":1,"a":2}`), v); err != nil {
			t.Fatalf("%T: %v", v, err)
		}
	}
	type rec struct {
		Next *rec `json:"next"`
		Name string
	}
	if err := CheckFields([]byte(`{"next":{"next":{"NAME":"x"}}}`), &rec{}); !errors.Is(err, ErrCaseVariant) {
		t.Fatalf("recursive type: got %v", err)
	}
}
