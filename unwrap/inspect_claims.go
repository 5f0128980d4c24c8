package unwrap

import "encoding/json"

// shownClaims are the claims Inspect returns in Node fields.
var shownClaims = []string{"iss", "sub", "client_id", "aud", "scope", "scp", "jti", "exp", "nbf", "iat"}

// otherClaims returns the payload's members other than shownClaims and
// the embedded map at path (an object left empty by removing the map is
// left out too), or nil when there are none.
func otherClaims(payload []byte, path []string) map[string]json.RawMessage {
	var top map[string]json.RawMessage
	if json.Unmarshal(payload, &top) != nil {
		return nil
	}
	for _, k := range shownClaims {
		delete(top, k)
	}
	removePath(top, path)
	if len(top) == 0 {
		return nil
	}
	return top
}

// removePath deletes the member at path from obj, and each object on the
// way that this leaves empty.
func removePath(obj map[string]json.RawMessage, path []string) {
	if len(path) == 0 {
		return
	}
	if len(path) == 1 {
		delete(obj, path[0])
		return
	}
	var inner map[string]json.RawMessage
	if json.Unmarshal(obj[path[0]], &inner) != nil {
		return
	}
	removePath(inner, path[1:])
	if len(inner) == 0 {
		delete(obj, path[0])
		return
	}
	b, err := json.Marshal(inner)
	if err == nil {
		obj[path[0]] = b
	}
}
