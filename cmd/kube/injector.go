package kube

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/cmd"
)

const usage = `embedtoken-kube: the embedtoken sidecar next to Kubernetes pods.

Usage: embedtoken-kube <command> [flags]

Commands:
  inject    add the sidecar of an API to Kubernetes YAML (pods and workloads)
  injector  run the mutating admission webhook that injects it into annotated pods
  version   print the version

Run 'embedtoken-kube <command> --help' for a command's flags.
`

// Run runs the subcommand named by args[0]; cmd.Exit turns the error into
// an exit code (0 ok, 1 failed, 2 usage or configuration error).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return cmd.UsageError("no command given", "")
	}
	switch args[0] {
	case "inject":
		return runInject(ctx, args[1:], stdout, stderr)
	case "injector":
		return runInjector(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "embedtoken-kube %s\n", cmd.Version)
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return cmd.UsageError(fmt.Sprintf("unknown command %q", args[0]), "run 'embedtoken-kube help' for the list of commands")
	}
}

// maxReviewBytes bounds an AdmissionReview body (etcd stores at most
// 1.5 MiB per object).
const maxReviewBytes = 4 << 20

// runInjector serves the mutating admission webhook on TLS and /healthz,
// /readyz, /metrics on an admin listener.
func runInjector(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := cmd.NewFlags("embedtoken-kube", "injector", "injector --config PATH --tls-cert FILE --tls-key FILE [--listen :8443] [--admin-listen :9902]", stderr)
	var configs cmd.StringList
	fs.Var(&configs, "config", "the catalog: a file or folder (repeatable); sidecar blocks are read from sidecars/ beside it")
	listenAddr := fs.String("listen", ":8443", "the webhook's TLS listener")
	adminAddr := fs.String("admin-listen", "127.0.0.1:9902", "/healthz, /readyz and /metrics")
	certFile := fs.String("tls-cert", "", "the serving certificate (PEM; reloaded when it changes)")
	keyFile := fs.String("tls-key", "", "the serving certificate's private key (PEM)")
	image := fs.String("image", defaultImage(), "the embedtoken image of the injected sidecar")
	cm := fs.String("config-map", "embedtoken", "the ConfigMap holding the HCL files, in the pod's namespace")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := cmd.ParseFlags(fs, args, 0); err != nil {
		return err
	}
	if *certFile == "" || *keyFile == "" {
		return cmd.UsageError("--tls-cert and --tls-key are required", "the API server calls webhooks over TLS only")
	}
	log, err := cmd.NewLogger(stderr, *level)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	wh, err := newWebhook(configs, *image, *cm, stderr)
	if err != nil {
		return err
	}
	certs := &certReloader{certFile: *certFile, keyFile: *keyFile}
	if _, err := certs.get(); err != nil {
		return cmd.ConfigError("tls: " + err.Error())
	}
	reg := cmd.NewRegistry()
	reg.MustRegister(wh.reviews)
	wh.log = log

	mux := http.NewServeMux()
	mux.Handle("POST /mutate", wh)
	listeners := []*cmd.Listener{
		cmd.NewListener("webhook", *listenAddr, mux, log),
		cmd.NewListener("admin", *adminAddr, cmd.AdminHandler(reg, nil), log),
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return certs.get() }}
	log.Info("injector starting", zap.Int("apis", len(wh.apis)), zap.String("image", *image), zap.String("config_map", *cm))
	return cmd.ListenAndServe(ctx, log, catalog.DefaultShutdownTimeout, listeners,
		map[string]func(net.Listener) net.Listener{"webhook": func(ln net.Listener) net.Listener { return tls.NewListener(ln, tlsConfig) }})
}

// webhook answers AdmissionReviews for pods.
type webhook struct {
	apis    map[string]*podInjector // nil value: declared, but its sidecar cannot be injected
	whyNot  map[string]string
	known   string
	reviews *prometheus.CounterVec
	log     *zap.Logger
}

func newWebhook(configs []string, image, cm string, stderr io.Writer) (*webhook, error) {
	cat, err := cmd.LoadCatalog(configs, catalog.KeysSkip, stderr)
	if err != nil {
		return nil, err
	}
	wh := &webhook{apis: map[string]*podInjector{}, whyNot: map[string]string{}, log: zap.NewNop(),
		reviews: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "embedtoken", Subsystem: "injector", Name: "reviews_total",
			Help: "Admission reviews by result (injected, unchanged, skipped, refused, error).",
		}, []string{"result"})}
	names := sortedAPIs(cat)
	for _, api := range names {
		var warn strings.Builder
		pi, err := injectorFor(configs, api, image, cm, &warn)
		if err != nil {
			wh.whyNot[api] = err.Error()
			wh.apis[api] = nil
			continue
		}
		if warn.Len() > 0 {
			fmt.Fprint(stderr, warn.String())
		}
		wh.apis[api] = pi
	}
	wh.known = strings.Join(names, ", ")
	return wh, nil
}

// The few AdmissionReview v1 fields the webhook uses.
type admissionReview struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Request    *admissionRequest  `json:"request,omitempty"`
	Response   *admissionResponse `json:"response,omitempty"`
}

type admissionRequest struct {
	UID       string           `json:"uid"`
	Kind      groupVersionKind `json:"kind"`
	Namespace string           `json:"namespace"`
	Operation string           `json:"operation"`
	Object    json.RawMessage  `json:"object"`
}

type groupVersionKind struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

type admissionResponse struct {
	UID       string           `json:"uid"`
	Allowed   bool             `json:"allowed"`
	Status    *admissionStatus `json:"status,omitempty"`
	PatchType string           `json:"patchType,omitempty"`
	Patch     []byte           `json:"patch,omitempty"`
	Warnings  []string         `json:"warnings,omitempty"`
}

type admissionStatus struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (wh *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		wh.fail(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxReviewBytes))
	if err != nil {
		wh.fail(w, http.StatusRequestEntityTooLarge, "body over 4 MiB or unreadable")
		return
	}
	var in admissionReview
	if err := json.Unmarshal(body, &in); err != nil || in.Request == nil || in.Request.UID == "" ||
		in.APIVersion != "admission.k8s.io/v1" || in.Kind != "AdmissionReview" {
		wh.fail(w, http.StatusBadRequest, "not an admission.k8s.io/v1 AdmissionReview request")
		return
	}
	resp, result := wh.review(in.Request)
	wh.reviews.WithLabelValues(result).Inc()
	resp.UID = in.Request.UID
	out, err := json.Marshal(admissionReview{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview", Response: resp})
	if err != nil {
		wh.fail(w, http.StatusInternalServerError, "encoding the response failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// fail answers an HTTP error: the API server then refuses the pod
// (failurePolicy: Fail).
func (wh *webhook) fail(w http.ResponseWriter, code int, msg string) {
	wh.reviews.WithLabelValues("error").Inc()
	http.Error(w, msg, code)
}

// review decides on one request: the response and the metric's result.
func (wh *webhook) review(req *admissionRequest) (*admissionResponse, string) {
	allow := &admissionResponse{Allowed: true}
	if req.Kind.Group != "" || req.Kind.Kind != "Pod" || req.Operation != "CREATE" {
		return allow, "skipped"
	}
	v, err := decodeJSON(req.Object)
	pod, ok := v.(map[string]any)
	if err != nil || !ok {
		return refuse(http.StatusBadRequest, "embedtoken: the pod in the review is not a JSON object"), "error"
	}
	api, present := nestedString(pod, "metadata", "annotations", apiAnnotation)
	if _, has := nestedAny(pod, "metadata", "annotations", apiAnnotation); has && !present {
		return refuse(http.StatusForbidden, "embedtoken: annotation "+apiAnnotation+" must be a string"), "refused"
	}
	if !present {
		return allow, "skipped"
	}
	pi, declared := wh.apis[api]
	switch {
	case !declared:
		return refuse(http.StatusForbidden, fmt.Sprintf("embedtoken: annotation %s names api %q, which the catalog does not declare (declared: %s)", apiAnnotation, truncate(api, 64), wh.known)), "refused"
	case pi == nil:
		return refuse(http.StatusForbidden, fmt.Sprintf("embedtoken: the sidecar of api %q cannot be injected: %s", api, wh.whyNot[api])), "refused"
	}
	spec, _ := pod["spec"].(map[string]any)
	p, err := pi.plan(spec)
	if err != nil {
		return refuse(http.StatusForbidden, "embedtoken: "+err.Error()), "refused"
	}
	if !p.changes() {
		return allow, "unchanged"
	}
	patch, err := json.Marshal(pi.patch(p))
	if err != nil {
		return refuse(http.StatusInternalServerError, "embedtoken: encoding the patch failed"), "error"
	}
	name, _ := nestedString(pod, "metadata", "name")
	if name == "" {
		name, _ = nestedString(pod, "metadata", "generateName")
	}
	wh.log.Info("injected", zap.String("api", api), zap.String("namespace", truncate(req.Namespace, 253)), zap.String("pod", truncate(name, 253)))
	allow.PatchType, allow.Patch = "JSONPatch", patch
	return allow, "injected"
}

func refuse(code int, msg string) *admissionResponse {
	return &admissionResponse{Allowed: false, Status: &admissionStatus{Code: code, Message: msg}}
}

func nestedAny(m map[string]any, keys ...string) (any, bool) {
	var cur any = m
	for _, k := range keys {
		cm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = cm[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// truncate bounds a hostile string echoed in a message or a log.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// certReloader serves the certificate in certFile/keyFile, loading it
// again when either file's modification time or size changes (a renewed
// Secret or cert-manager certificate), checked at most once a second. A
// pair that does not load keeps the last good one.
type certReloader struct {
	certFile, keyFile string
	mu                sync.Mutex
	cert              *tls.Certificate
	stamp             string
	checked           time.Time
}

func (c *certReloader) get() (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cert != nil && time.Since(c.checked) < time.Second {
		return c.cert, nil
	}
	c.checked = time.Now()
	stamp := cmd.FileStamps([]string{c.certFile, c.keyFile})
	if c.cert != nil && stamp == c.stamp {
		return c.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		if c.cert != nil {
			return c.cert, nil
		}
		return nil, err
	}
	c.cert, c.stamp = &cert, stamp
	return c.cert, nil
}
