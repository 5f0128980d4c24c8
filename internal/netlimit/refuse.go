package netlimit

import "net/http"

// CloseIfBody marks a refusal of r so that net/http sends it at once.
// When a handler answers without reading a request body the client is
// still sending, the server first drains that body (up to 256 KiB, at the
// client's pace) and only then sends the answer: a client trickling its
// body holds the refusal, a goroutine and a descriptor. With
// "Connection: close" set on the answer the server skips the drain and
// closes the connection after the answer, half-closing it first so that
// the client reads the answer rather than a reset. A request without a
// body keeps its connection.
func CloseIfBody(h http.Header, r *http.Request) {
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		h.Set("Connection", "close")
	}
}

// RefuseAtOnce wraps next so that every answer of status 400 or more to a
// request with a body is sent with CloseIfBody: for handlers that refuse
// before reading the body (a missing or wrong credential).
func RefuseAtOnce(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 && len(r.TransferEncoding) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&refusalWriter{ResponseWriter: w, r: r}, r)
	})
}

// refusalWriter applies CloseIfBody to an error status.
type refusalWriter struct {
	http.ResponseWriter
	r     *http.Request
	wrote bool
}

func (w *refusalWriter) WriteHeader(code int) {
	if !w.wrote && code >= 400 {
		CloseIfBody(w.Header(), w.r)
	}
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *refusalWriter) Write(p []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *refusalWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
